//! The IDX/MNIST loader on the real data and on damaged files written to a temporary directory.

use flate2::{write::GzEncoder, Compression};
use nnkern::data::mnist::{DEFAULT_DIR, FILES, PIXELS};
use nnkern::data::{read_idx, DataError, Mnist};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnkern-mnist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Uncompressed IDX bytes: magic for u8 elements of `dims.len()` dimensions, dims, data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A small valid MNIST directory: 3 training images, 2 test images.
fn write_small_mnist(dir: &Path) {
    let images = |n: usize| -> Vec<u8> { (0..n * PIXELS).map(|i| (i % 256) as u8).collect() };
    let files: [Vec<u8>; 4] = [
        idx_bytes(&[3, 28, 28], &images(3)),
        idx_bytes(&[3], &[7, 0, 9]),
        idx_bytes(&[2, 28, 28], &images(2)),
        idx_bytes(&[2], &[1, 2]),
    ];
    for (name, content) in FILES.iter().zip(files) {
        std::fs::write(dir.join(name), gzip(&content)).unwrap();
    }
}

/// Writes a small valid MNIST directory, replaces file `which` of [`FILES`] with `content`
/// (raw bytes, written as is) and returns the load error.
fn load_with(name: &str, which: usize, content: Vec<u8>) -> (PathBuf, DataError) {
    let dir = temp_dir(name);
    write_small_mnist(&dir);
    let path = dir.join(FILES[which]);
    std::fs::write(&path, content).unwrap();
    let err = Mnist::load(&dir).expect_err("damaged data must not load");
    let _ = std::fs::remove_dir_all(&dir);
    (path, err)
}

/// Asserts the error is a format error naming `path` whose message contains `needle`.
fn assert_format(path: &Path, err: &DataError, needle: &str) {
    let msg = err.to_string();
    assert!(matches!(err, DataError::Format { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(needle), "`{needle}` not in: {msg}");
}

#[test]
fn real_mnist_loads_with_the_documented_counts() {
    let data = Mnist::load(Path::new(DEFAULT_DIR))
        .unwrap_or_else(|e| panic!("the real MNIST data must be in {DEFAULT_DIR}: {e}"));
    assert_eq!(data.train.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(data.train.images.len(), 60_000 * PIXELS);
    assert_eq!(data.test.images.len(), 10_000 * PIXELS);
    // Training counts from ../shared/data/mnist/README.md; test counts of the original t10k set.
    assert_eq!(
        data.train.label_counts().unwrap(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        data.test.label_counts().unwrap(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    for split in [&data.train, &data.test] {
        assert!(split.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
        let max = split.images.iter().cloned().fold(0.0f32, f32::max);
        assert_eq!(max, 1.0, "pixels are byte / 255 and MNIST has pure white");
    }
    // The first training image is a 5, the first test image a 7 (the well-known ones).
    assert_eq!((data.train.labels[0], data.test.labels[0]), (5, 7));
}

#[test]
fn small_valid_files_load_exactly() {
    let dir = temp_dir("valid");
    write_small_mnist(&dir);
    let data = Mnist::load(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(data.train.labels, vec![7, 0, 9]);
    assert_eq!(data.test.labels, vec![1, 2]);
    assert_eq!(
        data.train.image(1).unwrap()[0],
        (PIXELS % 256) as f32 / 255.0
    );
    assert_eq!(data.train.image(0).unwrap()[255], 1.0);
    let mut images = vec![0.0; 2 * PIXELS];
    let mut labels = vec![0usize; 2];
    data.train
        .gather(&[2, 0], &mut images, &mut labels)
        .unwrap();
    assert_eq!(labels, vec![9, 7]);
    assert_eq!(&images[..PIXELS], data.train.image(2).unwrap());
    assert_eq!(data.train.take(2).labels, vec![7, 0]);
}

#[test]
fn missing_directory_says_where_it_looked_and_how_to_get_the_data() {
    let parent = temp_dir("nodir");
    let dir = parent.join("not-there");
    let err = Mnist::load(&dir).unwrap_err();
    let _ = std::fs::remove_dir_all(&parent);
    let msg = err.to_string();
    assert!(matches!(err, DataError::MissingDir { .. }), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
    assert!(msg.contains("--data"), "{msg}");
}

#[test]
fn missing_file_is_named() {
    let dir = temp_dir("nofile");
    write_small_mnist(&dir);
    let path = dir.join(FILES[3]);
    std::fs::remove_file(&path).unwrap();
    let err = Mnist::load(&dir).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn truncated_gzip_is_an_error() {
    let full = gzip(&idx_bytes(&[3, 28, 28], &[1; 3 * PIXELS]));
    for keep in [full.len() / 2, full.len() - 4, 12] {
        let (path, err) = load_with("trunc", 0, full[..keep].to_vec());
        assert!(matches!(err, DataError::Gzip { .. }), "kept {keep}: {err}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut bytes = gzip(&idx_bytes(&[3], &[7, 0, 9]));
    let n = bytes.len();
    bytes[n - 6] ^= 0xff; // inside the CRC-32 trailer
    let (path, err) = load_with("crc", 1, bytes);
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn plain_or_empty_file_is_not_gzip() {
    let (path, err) = load_with("plain", 1, idx_bytes(&[3], &[7, 0, 9]));
    assert_format(&path, &err, "not a gzip file");
    let (path, err) = load_with("empty", 1, Vec::new());
    assert_format(&path, &err, "empty");
}

#[test]
fn wrong_magic_is_an_error() {
    let mut bytes = idx_bytes(&[3], &[7, 0, 9]);
    bytes[2] = 0x0d; // float elements
    let (path, err) = load_with("type", 1, gzip(&bytes));
    assert_format(&path, &err, "element type");
    let (path, err) = load_with("rank", 1, gzip(&idx_bytes(&[3, 1], &[7, 0, 9])));
    assert_format(&path, &err, "2 dimensions, expected 1");
    let (path, err) = load_with("notidx", 1, gzip(b"PK\x03\x04 a zip file"));
    assert_format(&path, &err, "not an IDX file");
    let (path, err) = load_with("tiny", 1, gzip(&[0, 0]));
    assert_format(&path, &err, "too short");
}

#[test]
fn wrong_dimensions_are_an_error() {
    let (path, err) = load_with("dims", 2, gzip(&idx_bytes(&[2, 27, 28], &[0; 2 * 27 * 28])));
    assert_format(&path, &err, "27x28");
    let (path, err) = load_with("count", 3, gzip(&idx_bytes(&[3], &[1, 2, 3])));
    assert_format(&path, &err, "3 labels for the 2 images");
    let (path, err) = load_with("header", 0, gzip(&[0, 0, 8, 3, 0, 0, 0, 3]));
    assert_format(&path, &err, "header cut short");
}

#[test]
fn short_or_long_data_is_an_error() {
    let (path, err) = load_with(
        "short",
        0,
        gzip(&idx_bytes(&[3, 28, 28], &[0; 3 * PIXELS - 1])),
    );
    assert_format(&path, &err, "data too short");
    let (path, err) = load_with("long", 1, gzip(&idx_bytes(&[3], &[7, 0, 9, 9])));
    assert_format(&path, &err, "1 unexpected bytes");
}

#[test]
fn label_out_of_range_is_an_error() {
    let (path, err) = load_with("label", 1, gzip(&idx_bytes(&[3], &[7, 10, 9])));
    assert_format(&path, &err, "label 10 at index 1");
}

#[test]
fn read_idx_reports_the_rank_it_wanted() {
    let dir = temp_dir("rank");
    let path = dir.join("x.gz");
    std::fs::write(&path, gzip(&idx_bytes(&[2, 2], &[1, 2, 3, 4]))).unwrap();
    let a = read_idx(&path, 2).unwrap();
    assert_eq!((a.dims, a.data), (vec![2, 2], vec![1, 2, 3, 4]));
    assert!(read_idx(&path, 3).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
