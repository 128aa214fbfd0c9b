//! Export archives as `mssante import` reads them (`portability/src/import.rs`, format in
//! `docs/export-format.md`): the tar stream, zstd or not, the manifest and its SHA-256, every
//! file's size and SHA-256, the index lines, and where each file may lie.
//!
//! Checksums stop a mutating fuzzer at the first changed byte, so the first input byte picks
//! how the rest is read:
//! - even: the archive as it comes (tar or zstd-compressed tar): the container, the order of
//!   the entries, the checksum checks themselves;
//! - odd: a compact list of files that this target turns into a well-formed archive, filling
//!   in every checksum the import checks, so that mutations reach the manifest, the index
//!   lines and the paths behind them. The list is entries separated by NUL, each its name, a
//!   line feed and its contents; the first is `manifest.json`, and `manifest.json.sha256` is
//!   inserted after it.

use std::path::{Component, Path};

use mssante_portability::format::{self, IndexLine, Manifest};
use mssante_portability::import::{self, Checked};
use serde_json::Value;

pub fn archive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let accepted = if mode % 2 == 0 {
        import::check(rest)
    } else {
        import::check(well_formed(rest).as_slice())
    };
    if let Ok(checked) = accepted {
        assert_sound(&checked);
    }
}

/// What an accepted archive guarantees.
fn assert_sound(checked: &Checked) {
    let manifest = &checked.manifest;
    for (i, bal) in manifest.bals.iter().enumerate() {
        let files = std::iter::once(&bal.index).chain(&bal.files);
        for path in files.map(|f| f.path.as_str()) {
            assert_inside(&bal.address, path);
        }
        let lines: Vec<&IndexLine> = checked
            .lines
            .iter()
            .filter(|(bal, _)| *bal == i)
            .map(|(_, line)| line)
            .collect();
        assert_eq!(lines.len() as u64, bal.messages);
        for line in lines {
            assert_inside(&bal.address, &line.path);
        }
    }
    // What was accepted is written back as it was read (an export of the imported BALs
    // writes the same records).
    let again: Manifest = serde_json::from_slice(&serde_json::to_vec(manifest).unwrap()).unwrap();
    assert_eq!(&again, manifest);
    for (_, line) in &checked.lines {
        let again: IndexLine = serde_json::from_str(&serde_json::to_string(line).unwrap()).unwrap();
        assert_eq!(&again, line);
    }
}

/// A file of an accepted archive lies under `bals/ADDRESS/` and never climbs out of it,
/// by `std::path`'s reading of the name (not the import's own check).
fn assert_inside(address: &str, path: &str) {
    let path = Path::new(path);
    assert!(
        path.components().all(|c| matches!(c, Component::Normal(_)))
            && path.starts_with(Path::new("bals").join(address))
            && path != Path::new("bals").join(address),
        "{} accepted for {address}",
        path.display()
    );
}

/// The archive the odd mode describes, every size and SHA-256 in it made right.
fn well_formed(list: &[u8]) -> Vec<u8> {
    let mut files: Vec<(Vec<u8>, Vec<u8>)> = list
        .split(|&b| b == 0)
        .map(|entry| match entry.iter().position(|&b| b == b'\n') {
            Some(at) => (entry[..at].to_vec(), entry[at + 1..].to_vec()),
            None => (entry.to_vec(), Vec::new()),
        })
        .collect();
    if let Some((name, manifest)) = files.first_mut()
        && name == format::MANIFEST.as_bytes()
        && let Ok(mut value) = serde_json::from_slice::<Value>(manifest)
    {
        let mut rest = files.split_off(1);
        fill_in_sums(&mut value, &mut rest);
        let manifest = serde_json::to_vec(&value).unwrap();
        let sum = format!("{}  {}\n", format::sha256_hex(&manifest), format::MANIFEST);
        files = vec![
            (format::MANIFEST.into(), manifest),
            (format::MANIFEST_SUM.into(), sum.into_bytes()),
        ];
        files.extend(rest);
    }
    tar(&files)
}

/// Sets `size` and `sha256` of every file the manifest (and each BAL's index) names to those
/// of the file of that name in `files`.
fn fill_in_sums(manifest: &mut Value, files: &mut [(Vec<u8>, Vec<u8>)]) {
    let Some(bals) = manifest.get_mut("bals").and_then(Value::as_array_mut) else {
        return;
    };
    for bal in bals {
        if let Some(index) = bal.get_mut("index") {
            if let Some(at) = position(files, index) {
                files[at].1 = index_with_sums(&files[at].1, files);
            }
            set_sum(index, files);
        }
        if let Some(sides) = bal.get_mut("files").and_then(Value::as_array_mut) {
            sides.iter_mut().for_each(|side| set_sum(side, files));
        }
    }
}

/// The index lines with the size and SHA-256 of the message files they name.
fn index_with_sums(index: &[u8], files: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(index.len());
    for line in index.split_inclusive(|&b| b == b'\n') {
        match serde_json::from_slice::<Value>(line) {
            Ok(mut value) => {
                set_sum(&mut value, files);
                out.extend(serde_json::to_vec(&value).unwrap());
                out.push(b'\n');
            }
            Err(_) => out.extend_from_slice(line),
        }
    }
    out
}

/// Where in `files` the file a manifest sum (`{path, size, sha256}`) names is.
fn position(files: &[(Vec<u8>, Vec<u8>)], sum: &Value) -> Option<usize> {
    let path = sum.get("path")?.as_str()?;
    files.iter().position(|(name, _)| name == path.as_bytes())
}

fn set_sum(sum: &mut Value, files: &[(Vec<u8>, Vec<u8>)]) {
    let Some(at) = position(files, sum) else {
        return;
    };
    let contents = &files[at].1;
    let (size, sha256) = (contents.len(), format::sha256_hex(contents));
    if let Some(object) = sum.as_object_mut() {
        object.insert("size".into(), size.into());
        object.insert("sha256".into(), sha256.into());
    }
}

/// A GNU tar stream of `files`, names written as they are (`..` included: the builder's own
/// path checks would refuse what the import must refuse itself).
fn tar(files: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, contents) in files {
        if name.len() >= 100 {
            // GNU long name: a `././@LongLink` entry holding the name, then the file.
            let mut long = name.clone();
            long.push(0);
            let mut header = header(b"././@LongLink", long.len());
            header.set_entry_type(tar::EntryType::GNULongName);
            header.set_cksum();
            builder.append(&header, long.as_slice()).unwrap();
        }
        let header = header(&name[..name.len().min(99)], contents.len());
        builder.append(&header, contents.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

fn header(name: &[u8], size: usize) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(size as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/corpus/export_archive/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_seeds_pass_the_import_checks() {
        for seed in ["org", "per"] {
            let list = corpus(seed);
            let checked = import::check(well_formed(&list[1..]).as_slice())
                .unwrap_or_else(|e| panic!("{seed}: {e}"));
            assert!(checked.lines.len() >= 5, "{seed}");
            assert_sound(&checked);
        }
        for seed in ["org-zstd", "all-zstd"] {
            let checked = import::check(&corpus(seed)[1..]).unwrap();
            assert_sound(&checked);
        }
    }

    #[test]
    fn a_file_named_outside_its_bal_is_refused() {
        let list = corpus("crash-path-outside-bal");
        let refused = import::check(well_formed(&list[1..]).as_slice()).unwrap_err();
        assert!(refused.to_string().contains("../../../escape"), "{refused}");
        assert!(refused.to_string().contains("outside bals/"), "{refused}");
    }
}
