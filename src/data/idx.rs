//! The IDX file format of the MNIST database, gzip-compressed.
//!
//! Layout (all integers big-endian): a u32 magic number `0x0000TTDD` where `TT` is the element
//! type (`0x08` = unsigned byte, the only one MNIST uses and the only one read here) and `DD` the
//! number of dimensions, then one u32 per dimension, then the elements in row-major order.

use super::DataError;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// The IDX element type code of unsigned bytes.
pub const IDX_TYPE_U8: u8 = 0x08;

/// Decompressed files larger than this are refused (MNIST's largest is 47 MB): a corrupt or
/// hostile header cannot make the loader allocate without bound.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// An IDX array of unsigned bytes: its dimensions and its elements in row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (for MNIST images `[n, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

/// Reads a gzip-compressed IDX file of unsigned bytes and checks that it has `expected_rank`
/// dimensions and exactly as many data bytes as its dimensions say.
///
/// Errors name `path` and say what is wrong: [`DataError::Io`] when it cannot be read,
/// [`DataError::Gzip`] when it is not gzip or the stream is truncated or corrupt (the gzip
/// CRC-32 and length trailer are checked), [`DataError::Format`] for a wrong magic number, a
/// wrong rank, a header cut short, or data shorter or longer than the header says.
pub fn read_idx(path: &Path, expected_rank: usize) -> Result<IdxArray, DataError> {
    let bytes = read_gzip(path)?;
    parse_idx(path, &bytes, expected_rank)
}

/// The decompressed content of the gzip file at `path`.
fn read_gzip(path: &Path) -> Result<Vec<u8>, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = [0u8; 2];
    let mut reader = std::io::BufReader::new(file);
    let got = read_up_to(&mut reader, &mut head).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if got < 2 || head != [0x1f, 0x8b] {
        return Err(DataError::format(
            path,
            if got == 0 {
                "the file is empty (expected a gzip-compressed IDX file)".to_string()
            } else {
                "not a gzip file (it does not start with the gzip magic bytes 1f 8b)".to_string()
            },
        ));
    }
    let decoder = GzDecoder::new(std::io::Cursor::new(head).chain(reader));
    let mut out = Vec::new();
    decoder
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(DataError::format(
            path,
            format!("decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Parses decompressed IDX `bytes` (from `path`, named in errors) of unsigned bytes with
/// `expected_rank` dimensions.
pub fn parse_idx(path: &Path, bytes: &[u8], expected_rank: usize) -> Result<IdxArray, DataError> {
    if bytes.len() < 4 {
        return Err(DataError::format(
            path,
            format!(
                "too short for an IDX header: {} bytes, the magic number alone needs 4",
                bytes.len()
            ),
        ));
    }
    if expected_rank > 0xff {
        // The magic number holds the rank in one byte (this also keeps `4 * rank` in range).
        return Err(DataError::format(
            path,
            format!("an IDX file has at most 255 dimensions, {expected_rank} were asked for"),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected_magic = ((IDX_TYPE_U8 as u32) << 8) | expected_rank as u32;
    if magic != expected_magic {
        let what = if bytes[0] != 0 || bytes[1] != 0 {
            format!("wrong magic number {magic:#010x}: not an IDX file (expected {expected_magic:#010x})")
        } else if bytes[2] != IDX_TYPE_U8 {
            format!(
                "wrong magic number {magic:#010x}: element type {:#04x}, expected {IDX_TYPE_U8:#04x} (unsigned bytes)",
                bytes[2]
            )
        } else {
            format!(
                "wrong magic number {magic:#010x}: {} dimensions, expected {expected_rank}",
                bytes[3]
            )
        };
        return Err(DataError::format(path, what));
    }
    let header_len = 4 + 4 * expected_rank;
    if bytes.len() < header_len {
        return Err(DataError::format(
            path,
            format!(
                "header cut short: {} bytes, {expected_rank} dimensions need {header_len}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::format(path, format!("dimensions {dims:?} overflow")))?;
    let data = &bytes[header_len..];
    if data.len() < count {
        return Err(DataError::format(
            path,
            format!(
                "data too short: dimensions {dims:?} need {count} bytes after the header, the file has {}",
                data.len()
            ),
        ));
    }
    if data.len() > count {
        return Err(DataError::format(
            path,
            format!(
                "{} unexpected bytes after the {count} data bytes of dimensions {dims:?}",
                data.len() - count
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}
