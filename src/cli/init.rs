//! `mssante init`: creates the instance a configuration names (data dir, database schema),
//! for provisioning before the first `serve`; `serve` does the same on its first start.

use anyhow::Result;

use crate::config::Config;

pub async fn run(config: &Config) -> Result<()> {
    let dir = &config.data_dir;
    let existed = crate::config::is_initialised(dir);
    crate::serve::open_store(config).await?.close().await;
    match existed {
        true => println!("data dir {} was already initialised", dir.display()),
        false => println!(
            "data dir {} initialised (database {})",
            dir.display(),
            crate::serve::redact(&config.database_url)
        ),
    }
    Ok(())
}
