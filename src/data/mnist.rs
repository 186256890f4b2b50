//! The MNIST handwritten digits: 60,000 training and 10,000 test images of 28x28 grey pixels,
//! read from the four gzip-compressed IDX files of the original distribution.

use super::{idx::read_idx, DataError};
use crate::error::{shape_err, Error};
use std::path::{Path, PathBuf};

/// Side of an MNIST image in pixels.
pub const SIDE: usize = 28;
/// Pixels per image (`SIDE * SIDE`).
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes (the digits 0-9).
pub const CLASSES: usize = 10;
/// The data directory used when none is given, relative to the current directory.
pub const DEFAULT_DIR: &str = "../shared/data/mnist";

/// File names of the training images, training labels, test images and test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// One split (training or test) of MNIST, ready for a network: NCHW `[n, 1, 28, 28]` pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct MnistSplit {
    /// `n * 784` pixels scaled to `[0, 1]` (byte / 255), image after image, row-major.
    pub images: Vec<f32>,
    /// `n` labels in `0..10`.
    pub labels: Vec<u8>,
}

impl MnistSplit {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 784 pixels of image `i`, `None` if `i >= len()` (or `images` is too short: the
    /// fields are public, so a split may be inconsistent).
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let start = i.checked_mul(PIXELS)?;
        self.images.get(start..start.checked_add(PIXELS)?)
    }

    /// The first `n` images (all of them if `n >= len()`), e.g. for a quick run or a test.
    /// An inconsistent split (fewer than `len() * 784` pixels) is cut to its whole images.
    pub fn take(&self, n: usize) -> MnistSplit {
        let n = n.min(self.len()).min(self.images.len() / PIXELS);
        MnistSplit {
            images: self.images[..n * PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// How many images of each digit; a label outside `0..10` is an error naming its index.
    pub fn label_counts(&self) -> crate::Result<[usize; CLASSES]> {
        let mut counts = [0; CLASSES];
        for (i, &l) in self.labels.iter().enumerate() {
            *counts.get_mut(l as usize).ok_or_else(|| {
                Error::Invalid(format!("MNIST label {l} at index {i} is not a digit"))
            })? += 1;
        }
        Ok(counts)
    }

    /// Copies the images `indices` into `images` (`indices.len() * 784` values, NCHW) and their
    /// labels into `labels` (`indices.len()` values).
    ///
    /// Errors: [`Error::Shape`] if a buffer has the wrong length, [`Error::Invalid`] if an
    /// index is out of range (the buffers may then be partly written).
    pub fn gather<L: From<u8>>(
        &self,
        indices: &[usize],
        images: &mut [f32],
        labels: &mut [L],
    ) -> crate::Result<()> {
        let n = indices.len();
        if Some(images.len()) != n.checked_mul(PIXELS) || labels.len() != n {
            return Err(shape_err(
                "MnistSplit::gather buffers",
                format!("expected {n} x {PIXELS} pixels and {n} labels"),
                &[images.len(), labels.len()],
            ));
        }
        for ((&i, dst), label) in indices
            .iter()
            .zip(images.chunks_exact_mut(PIXELS))
            .zip(labels.iter_mut())
        {
            let (Some(image), Some(&l)) = (self.image(i), self.labels.get(i)) else {
                return Err(Error::Invalid(format!(
                    "MnistSplit::gather: index {i} out of range for {} images",
                    self.len().min(self.images.len() / PIXELS)
                )));
            };
            dst.copy_from_slice(image);
            *label = L::from(l);
        }
        Ok(())
    }
}

/// The MNIST data set: its training and test splits.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: MnistSplit,
    /// 10,000 test images.
    pub test: MnistSplit,
}

impl Mnist {
    /// Loads the four IDX files [`FILES`] from `dir`, checking every header and length, that
    /// images are 28x28, that each split has as many labels as images, and that labels are
    /// digits. A missing `dir` gives [`DataError::MissingDir`] saying where it looked and how to
    /// get the data; a bad file gives an error naming that file.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        if !dir.is_dir() {
            return Err(DataError::MissingDir {
                dir: dir.to_path_buf(),
                hint: format!(
                    "put the four gzip-compressed MNIST IDX files ({}) of the MNIST database \
                     (http://yann.lecun.com/exdb/mnist/ or any mirror) there, or pass --data DIR",
                    FILES.join(", ")
                ),
            });
        }
        Ok(Mnist {
            train: load_split(&dir.join(FILES[0]), &dir.join(FILES[1]))?,
            test: load_split(&dir.join(FILES[2]), &dir.join(FILES[3]))?,
        })
    }

    /// The data directory to use: `dir` if given, otherwise [`DEFAULT_DIR`].
    pub fn dir_or_default(dir: Option<&Path>) -> PathBuf {
        dir.map_or_else(|| PathBuf::from(DEFAULT_DIR), Path::to_path_buf)
    }
}

/// Loads one split from its images file and labels file.
fn load_split(images_path: &Path, labels_path: &Path) -> Result<MnistSplit, DataError> {
    let images = read_idx(images_path, 3)?;
    if images.dims[1..] != [SIDE, SIDE] {
        return Err(DataError::format(
            images_path,
            format!(
                "images are {}x{} pixels, MNIST's are {SIDE}x{SIDE}",
                images.dims[1], images.dims[2]
            ),
        ));
    }
    let labels = read_idx(labels_path, 1)?;
    if labels.dims[0] != images.dims[0] {
        return Err(DataError::format(
            labels_path,
            format!(
                "{} labels for the {} images of {}",
                labels.dims[0],
                images.dims[0],
                images_path.display()
            ),
        ));
    }
    if let Some(pos) = labels.data.iter().position(|&l| l as usize >= CLASSES) {
        return Err(DataError::format(
            labels_path,
            format!(
                "label {} at index {pos} is not a digit 0-9",
                labels.data[pos]
            ),
        ));
    }
    Ok(MnistSplit {
        images: images.data.iter().map(|&b| b as f32 / 255.0).collect(),
        labels: labels.data,
    })
}
