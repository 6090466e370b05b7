//! NumPy `.npy` files: the header format, writing f32 matrices and vectors (header padded so that
//! the data starts on a 64-byte boundary, as NumPy does, which makes zero-copy mmap possible), and
//! reading `<f4` (zero-copy) or `<f8` (converted) arrays in C order.

use std::path::Path;

use super::atomic::write_atomic;
use super::mmap;
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: usize,
}

/// Builds the header bytes for a C-order array of `shape` and dtype `descr` (`<f4`, `<i8`).
fn header_bytes(shape: &[usize], descr: &str) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    // magic(6) + version(2) + len(2) + dict + '\n' ≡ 0 (mod 64)
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a C-order f32 array of `shape` atomically. Returns the file's checksum.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<u64> {
    write_raw(path, shape, data.len(), "<f4", bytemuck::cast_slice(data))
}

/// Writes a C-order int64 array of `shape` atomically. Returns the file's checksum.
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<u64> {
    write_raw(path, shape, data.len(), "<i8", bytemuck::cast_slice(data))
}

fn write_raw(path: &Path, shape: &[usize], len: usize, descr: &str, body: &[u8]) -> Result<u64> {
    let n: usize = shape.iter().product();
    if n != len {
        return Err(Error::Mismatch {
            what: format!("{}: array length", path.display()),
            expected: n.to_string(),
            found: len.to_string(),
        });
    }
    let header = header_bytes(shape, descr);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&header);
    h.update(body);
    write_atomic(path, |w| {
        w.write_all(&header)?;
        w.write_all(body)
    })?;
    Ok(h.digest())
}

fn field<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let k = dict.find(&format!("'{key}'"))?;
    let rest = &dict[k + key.len() + 2..];
    let colon = rest.find(':')?;
    Some(rest[colon + 1..].trim_start())
}

/// Parses the header at the start of `bytes` (the whole file or its first few KiB).
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<NpyHeader> {
    let bad = |r: &str| Error::corrupt(path, format!("not a valid .npy file: {r}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header"))?;
    let dict = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text"))?;
    let descr = field(dict, "descr")
        .and_then(|s| s.strip_prefix('\''))
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| bad("no descr"))?
        .to_string();
    let fortran_order = match field(dict, "fortran_order") {
        Some(s) if s.starts_with("False") => false,
        Some(s) if s.starts_with("True") => true,
        _ => return Err(bad("no fortran_order")),
    };
    let shape_s = field(dict, "shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad("shape is not a tuple of integers"))?;
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset: end,
    })
}

/// A read-only f32 matrix, either memory-mapped (zero-copy) or owned.
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Storage,
}

enum Storage {
    Mapped { map: memmap2::Mmap, offset: usize },
    Owned(Vec<f32>),
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matrix({}×{})", self.rows, self.cols)
    }
}

impl Matrix {
    /// An owned matrix.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        assert_eq!(rows * cols, data.len(), "matrix shape");
        Matrix {
            rows,
            cols,
            data: Storage::Owned(data),
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All values, row-major.
    #[inline]
    pub fn as_slice(&self) -> &[f32] {
        match &self.data {
            Storage::Owned(v) => v,
            Storage::Mapped { map, offset } => {
                // Length and alignment were verified when the file was opened.
                bytemuck::cast_slice(&map[*offset..*offset + self.rows * self.cols * 4])
            }
        }
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.as_slice()[i * self.cols..(i + 1) * self.cols]
    }

    /// True when the data is memory-mapped.
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, Storage::Mapped { .. })
    }
}

/// Opens a `.npy` file of f32 or f64 values with 1 or 2 dimensions (a vector is one column).
/// `<f4` little-endian data is memory-mapped zero-copy; `<f8` is converted. Every value must be
/// finite. Returns the matrix and the checksum of the whole file.
pub fn open(path: &Path) -> Result<(Matrix, u64)> {
    let map = mmap::map(path)?;
    let h = parse_header(path, &map)?;
    if h.fortran_order {
        return Err(Error::corrupt(
            path,
            "Fortran-order array; save it with np.ascontiguousarray(x)",
        ));
    }
    let (rows, cols) = match h.shape[..] {
        [r, c] => (r, c),
        [r] => (r, 1),
        _ => {
            return Err(Error::corrupt(
                path,
                format!("expected a 1-D or 2-D array, found shape {:?}", h.shape),
            ))
        }
    };
    let width = match h.descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        d => {
            return Err(Error::corrupt(
                path,
                format!("dtype {d:?}: expected little-endian float32 ('<f4') or float64 ('<f8')"),
            ))
        }
    };
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .and_then(|n| n.checked_add(h.data_offset))
        .ok_or_else(|| Error::corrupt(path, "shape overflows"))?;
    if map.len() != need {
        return Err(Error::corrupt(
            path,
            format!(
                "length {} bytes, but the header's shape {:?} needs {need}",
                map.len(),
                h.shape
            ),
        ));
    }
    let checksum = xxhash_rust::xxh3::xxh3_64(&map);
    let body = &map[h.data_offset..];
    let m = if width == 8 {
        let v: Vec<f32> = body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect();
        Matrix::from_vec(rows, cols, v)
    } else if bytemuck::try_cast_slice::<u8, f32>(body).is_ok() {
        Matrix {
            rows,
            cols,
            data: Storage::Mapped {
                map,
                offset: h.data_offset,
            },
        }
    } else {
        // Misaligned data (a header not padded to a multiple of 4): copy.
        let v: Vec<f32> = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Matrix::from_vec(rows, cols, v)
    };
    if let Some(pos) = m.as_slice().iter().position(|x| !x.is_finite()) {
        return Err(Error::corrupt(
            path,
            format!(
                "value at row {}, column {} is not finite",
                pos / cols.max(1),
                pos % cols.max(1)
            ),
        ));
    }
    Ok((m, checksum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_numpy_compatible_and_aligned() {
        let h = header_bytes(&[3, 4], "<f4");
        assert_eq!(h.len() % 64, 0);
        assert!(std::str::from_utf8(&h[10..])
            .unwrap()
            .starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"));
        let p = parse_header(Path::new("x"), &h).unwrap();
        assert_eq!(p.shape, vec![3, 4]);
        assert_eq!(p.data_offset, h.len());
        assert_eq!(
            parse_header(Path::new("x"), &header_bytes(&[5], "<f4"))
                .unwrap()
                .shape,
            vec![5]
        );
    }

    #[test]
    fn round_trip_mapped_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..12).map(|x| x as f32 * 0.5).collect();
        let c = write_f32(&p, &[3, 4], &data).unwrap();
        let (m, c2) = open(&p).unwrap();
        assert!(m.is_mapped());
        assert_eq!(c, c2);
        assert_eq!(m.row(2), &data[8..12]);
        // truncated
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(open(&p), Err(Error::Corrupt { .. })));
        // bad magic
        std::fs::write(&p, b"hello world, this is not npy").unwrap();
        assert!(matches!(open(&p), Err(Error::Corrupt { .. })));
        // NaN
        write_f32(&p, &[2], &[1.0, f32::NAN]).unwrap();
        assert!(open(&p).unwrap_err().to_string().contains("not finite"));
    }
}
