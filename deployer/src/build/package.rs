//! Reproducible Lambda zips: one entry `bootstrap`, fixed timestamp, fixed mode,
//! fixed compression level. The same binary always gives the same bytes, so the
//! sha256 alone decides whether code has to be uploaded.

use std::io::{Cursor, Write};

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Zip `bootstrap` (and nothing else) into memory.
pub fn zip_bootstrap(binary: &[u8]) -> Result<Vec<u8>, zip::result::ZipError> {
    zip_entries(&[("bootstrap", binary, 0o755)], 9)
}

/// Zip entries, sorted by name, with fixed metadata.
pub fn zip_entries(entries: &[(&str, &[u8], u32)], level: i64) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut sorted: Vec<_> = entries.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, mode) in sorted {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(level))
            .last_modified_time(DateTime::default()) // 1980-01-01 00:00:00
            .unix_permissions(mode)
            .large_file(false);
        zip.start_file(name, options)?;
        zip.write_all(data)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Hex sha256, for our records and display.
pub use crate::digest::sha256_hex;

/// Base64 sha256 of the zip: the form Lambda reports as `CodeSha256`.
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn zip_is_byte_identical_for_identical_input() {
        let a = zip_bootstrap(b"\x7fELF pretend binary").unwrap();
        let b = zip_bootstrap(b"\x7fELF pretend binary").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, zip_bootstrap(b"\x7fELF other binary").unwrap());
    }

    #[test]
    fn entries_are_sorted_executable_and_dated_1980() {
        let bytes = zip_entries(&[("z.txt", b"z", 0o644), ("bootstrap", b"bin", 0o755)], 9).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.file_names().map(|n| n.unwrap().into_owned()).collect::<Vec<_>>(), ["bootstrap", "z.txt"]);
        let mut f = archive.by_name("bootstrap").unwrap();
        assert_eq!(f.unix_mode().unwrap() & 0o777, 0o755);
        assert_eq!(f.last_modified().unwrap().year(), 1980);
        let mut content = Vec::new();
        f.read_to_end(&mut content).unwrap();
        assert_eq!(content, b"bin");
    }

    #[test]
    fn code_sha256_is_lambdas_base64_form() {
        // sha256("") in base64, as Lambda would report it for an empty package.
        assert_eq!(code_sha256(b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
