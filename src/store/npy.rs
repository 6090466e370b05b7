//! NumPy `.npy` files: the header format, writing f32 matrices and vectors (header padded so that
//! the data starts on a 64-byte boundary, as NumPy does, which makes zero-copy mmap possible), and
//! reading float arrays: little-endian float32 in C order is memory-mapped zero-copy; float16,
//! float64, big-endian data and Fortran (column-major) order are converted to a row-major f32
//! copy on load.

use std::io::Write;
use std::path::Path;

use super::atomic::{write_atomic, AtomicFile};
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
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::Mismatch {
            what: format!("{}: array length", path.display()),
            expected: n.to_string(),
            found: data.len().to_string(),
        });
    }
    let header = header_bytes(shape, f32::DESCR);
    let body: &[u8] = bytemuck::cast_slice(data);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&header);
    h.update(body);
    write_atomic(path, |w| {
        w.write_all(&header)?;
        w.write_all(body)
    })?;
    Ok(h.digest())
}

/// A dtype [`NpyWriter`] writes: its `.npy` descr.
pub trait NpyDtype: bytemuck::Pod {
    /// The dtype string (`<f4`).
    const DESCR: &'static str;
}

impl NpyDtype for f32 {
    const DESCR: &'static str = "<f4";
}

impl NpyDtype for i64 {
    const DESCR: &'static str = "<i8";
}

/// A C-order array of `T` written block by block, atomically: [`NpyWriter::finish`] checks
/// that exactly the header's number of values came and renames the file into place; dropped
/// unfinished, it leaves nothing.
pub struct NpyWriter<T: NpyDtype> {
    file: AtomicFile,
    left: usize,
    values: std::marker::PhantomData<T>,
}

impl<T: NpyDtype> NpyWriter<T> {
    /// Starts `path` as an array of `shape`.
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(&header_bytes(shape, T::DESCR))
            .map_err(|e| Error::io(path, e))?;
        Ok(NpyWriter {
            file,
            left: shape.iter().product(),
            values: std::marker::PhantomData,
        })
    }

    /// Appends the next values, in C order.
    pub fn append(&mut self, values: &[T]) -> Result<()> {
        let Some(left) = self.left.checked_sub(values.len()) else {
            return Err(Error::Mismatch {
                what: format!("{}: array length", self.file.path().display()),
                expected: format!("at most {} more values", self.left),
                found: values.len().to_string(),
            });
        };
        self.left = left;
        (self.file)
            .write_all(bytemuck::cast_slice(values))
            .map_err(|e| Error::io(self.file.path(), e))
    }

    /// Checks that every value came, and renames the file into place.
    pub fn finish(self) -> Result<()> {
        self.into_file()?.commit()
    }

    /// Checks that every value came, and gives the file back uncommitted (for
    /// [`commit_together`](super::atomic::commit_together)).
    pub fn into_file(self) -> Result<AtomicFile> {
        if self.left != 0 {
            return Err(Error::Mismatch {
                what: format!("{}: array length", self.file.path().display()),
                expected: "the header's count".into(),
                found: format!("{} values short", self.left),
            });
        }
        Ok(self.file)
    }
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

    /// Refuses an array without a value (0 rows or 0 columns), read from `path`, where one
    /// `what` vector per row is expected.
    pub fn non_empty(&self, path: &Path, what: &str) -> Result<()> {
        if self.rows == 0 || self.cols == 0 {
            return Err(Error::corrupt(
                path,
                format!(
                    "an empty array ({} x {}): expected one {what} vector per row",
                    self.rows, self.cols
                ),
            ));
        }
        Ok(())
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

/// An element type `open` reads: a float of `width` bytes, little- or big-endian.
#[derive(Clone, Copy, Debug, PartialEq)]
struct FloatType {
    width: usize,
    big_endian: bool,
}

impl FloatType {
    /// The float type of a dtype string (`<f4`, `>f8`, `<f2`, …), if it is one `open` reads.
    fn parse(descr: &str) -> Option<FloatType> {
        let big_endian = match descr.as_bytes().first()? {
            b'<' => false,
            b'>' => true,
            _ => return None,
        };
        let width = match &descr[1..] {
            "f2" => 2,
            "f4" => 4,
            "f8" => 8,
            _ => return None,
        };
        Some(FloatType { width, big_endian })
    }

    /// Decodes one element (`bytes.len() == width`).
    fn decode(self, bytes: &[u8]) -> f32 {
        let mut b = [0u8; 8];
        b[..self.width].copy_from_slice(bytes);
        if self.big_endian {
            b[..self.width].reverse();
        }
        match self.width {
            2 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            _ => f64::from_le_bytes(b) as f32,
        }
    }
}

/// Opens a `.npy` file of float values with 1 or 2 dimensions (a vector is one column).
/// Little-endian float32 in C order is memory-mapped zero-copy; float16, float64, big-endian
/// data and Fortran order are converted into a row-major f32 copy. Every value must be finite
/// as an f32. Returns the matrix and the checksum of the whole file.
pub fn open(path: &Path) -> Result<(Matrix, u64)> {
    let map = mmap::map(path)?;
    let h = parse_header(path, &map)?;
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
    let ty = FloatType::parse(&h.descr).ok_or_else(|| {
        Error::corrupt(
            path,
            format!(
                "dtype {:?}: expected a float array (float16, float32 or float64, '<f2', '<f4', \
                 '<f8' or big-endian '>f…')",
                h.descr
            ),
        )
    })?;
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(ty.width))
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
    // Column-major order differs from row-major only when both dimensions exceed 1.
    let column_major = h.fortran_order && rows > 1 && cols > 1;
    let native = ty == FloatType::parse("<f4").expect("a float type");
    let m = if native && !column_major && bytemuck::try_cast_slice::<u8, f32>(body).is_ok() {
        Matrix {
            rows,
            cols,
            data: Storage::Mapped {
                map,
                offset: h.data_offset,
            },
        }
    } else {
        // Converted (or misaligned: a header not padded to a multiple of 4): copy.
        let v: Vec<f32> = body.chunks_exact(ty.width).map(|c| ty.decode(c)).collect();
        let v = if column_major {
            transpose(&v, cols, rows)
        } else {
            v
        };
        Matrix::from_vec(rows, cols, v)
    };
    if let Some(pos) = m.as_slice().iter().position(|x| !x.is_finite()) {
        return Err(Error::corrupt(
            path,
            format!(
                "value at row {}, column {} is not finite{}",
                pos / cols.max(1),
                pos % cols.max(1),
                if ty.width == 8 { " as a float32" } else { "" }
            ),
        ));
    }
    Ok((m, checksum))
}

/// The row-major transpose of a row-major `rows × cols` matrix.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for (r, row) in v.chunks_exact(cols).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            out[c * rows + r] = x;
        }
    }
    out
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

    #[test]
    fn streamed_arrays_match_whole_ones_and_refuse_a_wrong_count() {
        let dir = tempfile::tempdir().unwrap();
        let (whole, streamed) = (dir.path().join("w.npy"), dir.path().join("s.npy"));
        let data: Vec<f32> = (0..12).map(|x| x as f32 - 2.5).collect();
        write_f32(&whole, &[4, 3], &data).unwrap();
        let mut w = NpyWriter::<f32>::create(&streamed, &[4, 3]).unwrap();
        w.append(&data[..5]).unwrap();
        assert!(!streamed.exists(), "nothing in place before finish");
        w.append(&data[5..]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&streamed).unwrap()
        );
        // int64: the header says so.
        let ints = dir.path().join("i.npy");
        let mut w = NpyWriter::<i64>::create(&ints, &[2]).unwrap();
        w.append(&[7, -1]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&ints).unwrap();
        let h = parse_header(&ints, &bytes).unwrap();
        assert_eq!((h.descr.as_str(), h.shape.as_slice()), ("<i8", &[2][..]));
        assert_eq!(
            &bytes[h.data_offset..],
            [7i64.to_le_bytes(), (-1i64).to_le_bytes()].concat()
        );
        // Too many values, or too few: refused, and the old file stays.
        let mut w = NpyWriter::<f32>::create(&streamed, &[2]).unwrap();
        assert!(w.append(&[1.0, 2.0, 3.0]).is_err());
        drop(w);
        let w = NpyWriter::<f32>::create(&streamed, &[2]).unwrap();
        assert!(w
            .finish()
            .unwrap_err()
            .to_string()
            .contains("2 values short"));
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&streamed).unwrap()
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            3,
            "no temporary file left"
        );
    }

    /// A `.npy` file of `shape` whose header says `descr` and `fortran_order`, with `body` as
    /// its raw data.
    fn raw_npy(path: &Path, descr: &str, fortran: bool, shape: &[usize], body: &[u8]) {
        let mut h = header_bytes(shape, descr);
        if fortran {
            let at = h.windows(5).position(|w| w == b"False").unwrap();
            // "True " keeps the header length (the padding absorbs the space).
            h[at..at + 5].copy_from_slice(b"True ");
        }
        h.extend_from_slice(body);
        std::fs::write(path, h).unwrap();
    }

    #[test]
    fn converts_float16_float64_big_endian_and_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        // The 2 × 3 matrix [[0, 1, 2], [3, 4, 5]] · 0.5 in every layout.
        let want: Vec<f32> = (0..6).map(|x| x as f32 * 0.5).collect();
        let c_order = [0usize, 1, 2, 3, 4, 5];
        let f_order = [0usize, 3, 1, 4, 2, 5];
        for (descr, enc) in [
            (
                "<f4",
                &(|x: f32| x.to_le_bytes().to_vec()) as &dyn Fn(f32) -> Vec<u8>,
            ),
            (">f4", &|x: f32| x.to_be_bytes().to_vec()),
            ("<f8", &|x: f32| f64::from(x).to_le_bytes().to_vec()),
            (">f8", &|x: f32| f64::from(x).to_be_bytes().to_vec()),
            ("<f2", &|x: f32| {
                half::f16::from_f32(x).to_le_bytes().to_vec()
            }),
            (">f2", &|x: f32| {
                half::f16::from_f32(x).to_be_bytes().to_vec()
            }),
        ] {
            for (fortran, order) in [(false, &c_order), (true, &f_order)] {
                let body: Vec<u8> = order.iter().flat_map(|&i| enc(want[i])).collect();
                raw_npy(&p, descr, fortran, &[2, 3], &body);
                let (m, _) = open(&p).unwrap_or_else(|e| panic!("{descr} {fortran}: {e}"));
                assert_eq!((m.rows(), m.cols()), (2, 3), "{descr} fortran={fortran}");
                assert_eq!(m.as_slice(), &want[..], "{descr} fortran={fortran}");
                assert_eq!(
                    m.is_mapped(),
                    descr == "<f4" && !fortran,
                    "{descr} {fortran}"
                );
            }
        }
        // A Fortran-order vector or single column is the same bytes as C order: still mapped.
        let body: Vec<u8> = want.iter().flat_map(|x| x.to_le_bytes()).collect();
        for shape in [&[6usize][..], &[6, 1], &[1, 6]] {
            raw_npy(&p, "<f4", true, shape, &body);
            let (m, _) = open(&p).unwrap();
            assert!(m.is_mapped(), "{shape:?}");
            assert_eq!(m.as_slice(), &want[..]);
        }
        // A float64 beyond f32's range is refused, naming the element.
        let mut body: Vec<u8> = [1.0f64, 1e300]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        raw_npy(&p, "<f8", false, &[1, 2], &body);
        let e = open(&p).unwrap_err().to_string();
        assert!(
            e.contains("row 0, column 1 is not finite as a float32"),
            "{e}"
        );
        // Integer arrays and unknown byte orders are refused, naming the dtype.
        body.truncate(8);
        for descr in ["<i8", "|u1", "=f8", "<c8"] {
            raw_npy(&p, descr, false, &[1], &body);
            let e = open(&p).unwrap_err().to_string();
            assert!(e.contains(descr) && e.contains("float"), "{descr}: {e}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        /// Random damage to a `.npy` file brought from elsewhere never panics: `open` either
        /// refuses it naming the file, or returns a matrix whose shape accounts for every byte.
        #[test]
        fn damaged_npy_never_panics(
            pos in proptest::prelude::any::<proptest::sample::Index>(),
            bytes_in in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4),
            cut in 0usize..6,
            kind in 0usize..3,
            fortran in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("e.npy");
            let data: Vec<f32> = (0..12).map(|x| x as f32 - 3.0).collect();
            write_f32(&p, &[3, 4], &data).unwrap();
            let mut b = std::fs::read(&p).unwrap();
            if fortran {
                // A header numpy writes for Fortran-order or float64 data takes the copy path.
                let i = b.windows(5).position(|w| w == b"False").unwrap();
                b[i..i + 5].copy_from_slice(b"True ");
            }
            // Damage lands in the header (the first 64 bytes) half the time.
            let at = if pos.index(2) == 0 { pos.index(64) } else { pos.index(b.len()) };
            match kind {
                0 => { b.splice(at..at, bytes_in.iter().copied()); }
                1 => { let end = (at + cut).min(b.len()); b.drain(at..end); }
                _ => for (j, &x) in bytes_in.iter().enumerate() {
                    if let Some(v) = b.get_mut(at + j) { *v = x; }
                },
            }
            std::fs::write(&p, &b).unwrap();
            match open(&p) {
                Ok((m, _)) => {
                    let h = parse_header(&p, &b).unwrap();
                    proptest::prop_assert_eq!(h.data_offset + m.rows() * m.cols() * 4, b.len());
                    proptest::prop_assert!(m.as_slice().iter().all(|x| x.is_finite()));
                }
                Err(e) => proptest::prop_assert!(e.to_string().contains("e.npy"), "{}", e),
            }
        }
    }
}
