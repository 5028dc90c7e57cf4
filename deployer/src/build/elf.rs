//! Which glibc a Lambda binary needs. provided.al2023 ships glibc 2.34: a binary
//! linked against a newer symbol version dies at cold start with
//! "GLIBC_2.xx not found", long after the deploy reported success. We read the
//! ELF's version-needs table (what the dynamic loader checks) and refuse early.

use object::elf::{FileHeader64, SHT_STRTAB};
use object::read::elf::{FileHeader, SectionHeader};
use object::Endianness;

/// The newest glibc provided.al2023 has.
pub const LAMBDA_GLIBC: (u32, u32) = (2, 34);

/// Highest `GLIBC_x.y` version the binary requires, `None` for a binary that needs
/// no glibc symbol version (static, musl).
pub fn max_glibc(binary: &[u8]) -> Result<Option<(u32, u32)>, String> {
    let header = FileHeader64::<Endianness>::parse(binary).map_err(|e| format!("not a 64-bit ELF executable: {e}"))?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let sections = header.sections(endian, binary).map_err(|e| e.to_string())?;
    let Some((mut needs, link)) = sections.gnu_verneed(endian, binary).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let strtab = sections.section(link).map_err(|e| e.to_string())?;
    if strtab.sh_type(endian) != SHT_STRTAB {
        return Err("version-needs section is not linked to a string table".into());
    }
    let strings = strtab.strings(endian, binary).map_err(|e| e.to_string())?.ok_or("missing string table")?;
    let mut max = None;
    while let Some((_, mut aux)) = needs.next().map_err(|e| e.to_string())? {
        while let Some(entry) = aux.next().map_err(|e| e.to_string())? {
            let name = entry.name(endian, strings).map_err(|e| e.to_string())?;
            if let Some(v) = parse_glibc(name) {
                max = max.max(Some(v));
            }
        }
    }
    Ok(max)
}

fn parse_glibc(name: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(name).ok()?.strip_prefix("GLIBC_")?;
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names() {
        assert_eq!(parse_glibc(b"GLIBC_2.34"), Some((2, 34)));
        assert_eq!(parse_glibc(b"GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_glibc(b"GLIBC_PRIVATE"), None);
        assert_eq!(parse_glibc(b"GCC_3.0"), None);
    }

    #[test]
    fn reads_the_test_binary_itself() {
        // This test binary is a dynamically linked ELF on Linux/glibc hosts.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let v = max_glibc(&me).unwrap();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let (major, minor) = v.expect("a glibc binary needs GLIBC_ versions");
            assert_eq!(major, 2);
            assert!(minor >= 2, "{minor}");
        }
    }

    #[test]
    fn rejects_non_elf() {
        assert!(max_glibc(b"#!/bin/sh\necho hi\n").is_err());
    }
}
