//! `sqlx::migrate!` (store/src/schema.rs) embeds the migrations at compile time, and cargo
//! does not know it reads them: without this, a commit that only adds a migration leaves a
//! build that carries the old list.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
