//! The framed header shared by `model.bin` and `index.bin`: 8 bytes of magic, a u32 format
//! version, the payload's length (u64) and xxh3 checksum (u64), then the bincode payload. Both
//! files are encoded and verified here, so the framing exists once.

use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Largest payload accepted (guards allocations against corrupt length fields).
pub const MAX_PAYLOAD: u64 = 1 << 31;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_PAYLOAD as usize }>()
}

/// Encodes `value` behind the frame.
pub fn encode<T: Serialize>(magic: &[u8; 8], version: u32, value: &T) -> Result<Vec<u8>> {
    let payload = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| Error::invalid("metadata", e.to_string()))?;
    let mut out = Vec::with_capacity(28 + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Verifies the frame (magic, version, length, checksum) and decodes the payload. `what` names
/// the file kind in messages ("model.bin").
pub fn decode<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    magic: &[u8; 8],
    version: u32,
    what: &str,
) -> Result<T> {
    let (_, payload) = verify(path, bytes, magic, &[version], what)?;
    decode_payload(path, payload)
}

/// Verifies the frame (magic, a version among `versions`, length, checksum) and returns the
/// version found and the payload, for a reader that decodes each version its own way.
pub fn verify<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: &[u8; 8],
    versions: &[u32],
    what: &str,
) -> Result<(u32, &'a [u8])> {
    if bytes.len() < 28 || &bytes[..8] != magic {
        return Err(Error::corrupt(
            path,
            format!("not an lshrec {what} (bad magic)"),
        ));
    }
    let found = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !versions.contains(&found) {
        let known: Vec<String> = versions.iter().map(u32::to_string).collect();
        return Err(Error::corrupt(
            path,
            format!(
                "format version {found}; this lshrec reads version {}",
                known.join(" or ")
            ),
        ));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let sum = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    if len > MAX_PAYLOAD || bytes.len() as u64 != 28 + len {
        return Err(Error::corrupt(
            path,
            format!(
                "payload length {len} does not match the file's {} bytes",
                bytes.len()
            ),
        ));
    }
    let payload = &bytes[28..];
    if xxhash_rust::xxh3::xxh3_64(payload) != sum {
        return Err(Error::corrupt(path, "checksum mismatch"));
    }
    Ok((found, payload))
}

/// Decodes a verified payload (every byte must be used).
pub fn decode_payload<T: DeserializeOwned>(path: &Path, payload: &[u8]) -> Result<T> {
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| Error::corrupt(path, format!("undecodable metadata: {e}")))?;
    if used != payload.len() {
        return Err(Error::corrupt(path, "trailing bytes after the metadata"));
    }
    Ok(value)
}
