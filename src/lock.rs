//! One `mssante serve` per data dir and machine. A second server on the same data dir would
//! free the first one's queue claims at start (they share the node prefix, ADR 0008), and on
//! SQLite its deliveries would never reach the first one's IDLE sessions. Servers on other
//! machines sharing a PostgreSQL database and a data dir on shared storage are meant to run
//! together: each machine takes its own lock file. Administration commands take no lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Locks `data_dir` for this process (released when the file is dropped, or when the process
/// dies however it dies: the kernel drops `flock` locks with the descriptor).
pub fn lock_data_dir(data_dir: &Path) -> Result<File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("data_dir: cannot create {}", data_dir.display()))?;
    let path = lock_path(data_dir);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("data_dir: cannot open {}", path.display()))?;
    // SAFETY: flock only takes a descriptor this function owns and flags.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err).with_context(|| format!("data_dir: cannot lock {}", path.display()));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "data_dir: {} is in use by another `mssante serve` (pid {}, lock {}): stop it first, \
             or give this server its own data_dir",
            data_dir.display(),
            holder.trim(),
            path.display()
        );
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// This machine's lock file in `data_dir`.
fn lock_path(data_dir: &Path) -> std::path::PathBuf {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    data_dir.join(format!("serve-{machine}.lock"))
}

/// The pid of the `mssante serve` holding `data_dir`'s lock on this machine, if one does
/// (`doctor`: a listening port is then ours). Creates nothing and takes no lasting lock.
pub fn serve_holding(data_dir: &Path) -> Option<String> {
    let mut file = File::open(lock_path(data_dir)).ok()?;
    // SAFETY: flock only takes a descriptor this function owns and flags.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return None; // nobody holds it; the shared lock goes with the descriptor
    }
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    Some(holder.trim().to_string())
}
