//! [`Tensor`]: an owned f32 buffer with a shape (row-major / NCHW), and borrowed views.

#[cfg(doc)]
use crate::error::Error;
use crate::error::{shape_err, Result};

/// An owned, contiguous, row-major f32 buffer with a shape. No autograd: layers read and write
/// tensors explicitly. Resizing reuses the allocation when it is large enough, so buffers kept
/// by layers stop allocating after the first step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor {
    data: Vec<f32>,
    shape: Vec<usize>,
}

/// The element count of `shape`, with room for it reserved in `data`; a shape error naming
/// `what` if the count overflows or the allocation fails.
fn reserve(what: &str, data: &mut Vec<f32>, shape: &[usize]) -> Result<usize> {
    let n = numel(shape)
        .ok_or_else(|| shape_err(what, "expected an element count that fits in usize", shape))?;
    data.try_reserve(n.saturating_sub(data.len()))
        .map_err(|e| shape_err(what, format!("cannot allocate {n} elements ({e})"), shape))?;
    Ok(n)
}

/// The number of elements of `shape`, or `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

impl Tensor {
    /// An empty tensor (no elements, rank 0); usable in statics.
    pub const fn new_empty() -> Tensor {
        Tensor {
            data: Vec::new(),
            shape: Vec::new(),
        }
    }

    /// A tensor of zeros.
    ///
    /// Errors: [`Error::Shape`] if the element count overflows `usize` or cannot be allocated
    /// (the allocation is attempted, never aborted on).
    pub fn zeros(shape: &[usize]) -> Result<Tensor> {
        let mut data = Vec::new();
        let n = reserve("Tensor::zeros", &mut data, shape)?;
        data.resize(n, 0.0);
        Ok(Tensor {
            data,
            shape: shape.to_vec(),
        })
    }

    /// A tensor holding `data` with `shape`; fails unless the lengths agree.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        if numel(shape) != Some(data.len()) {
            return Err(shape_err(
                "Tensor::from_vec",
                format!("expected a shape of {} elements", data.len()),
                shape,
            ));
        }
        Ok(Tensor {
            data,
            shape: shape.to_vec(),
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Element count.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The first dimension (batch size), 0 for a 0-d tensor.
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Gives the tensor `shape`, keeping the allocation when it is large enough; the contents
    /// are unspecified afterwards (callers overwrite them). Does not allocate when the element
    /// count and rank do not grow.
    ///
    /// Errors: [`Error::Shape`] if the element count overflows `usize` or cannot be allocated;
    /// the tensor is then unchanged.
    pub fn resize(&mut self, shape: &[usize]) -> Result<()> {
        let n = reserve("Tensor::resize", &mut self.data, shape)?;
        self.set_shape(n, shape);
        Ok(())
    }

    /// Sets the element count `n` and `shape` (`n` is the shape's count, with room reserved).
    fn set_shape(&mut self, n: usize, shape: &[usize]) {
        self.data.resize(n, 0.0);
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
    }

    /// Reinterprets the elements with a new shape of the same element count.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        if numel(shape) != Some(self.data.len()) {
            return Err(shape_err(
                "Tensor::reshape",
                format!("expected a shape of {} elements", self.data.len()),
                shape,
            ));
        }
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        Ok(())
    }

    /// Copies `other`'s shape and elements into `self`, reusing the allocation.
    pub fn copy_from(&mut self, other: &Tensor) {
        // `other` exists, so its shape's element count is its (allocated) length.
        self.set_shape(other.data.len(), &other.shape);
        self.data.copy_from_slice(&other.data);
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: f32) {
        self.data.fill(v);
    }

    /// A borrowed view.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            shape: &self.shape,
            data: &self.data,
        }
    }

    /// Rows `start..end` of the first dimension as a view (e.g. a slice of a batch).
    pub fn rows(&self, start: usize, end: usize) -> Result<TensorView<'_>> {
        self.view().rows(start, end)
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// A borrowed tensor: shape and elements. Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorView<'a> {
    /// The shape of the whole tensor this view was taken from (dimension 0 is replaced by
    /// [`TensorView::batch`] for row views).
    shape: &'a [usize],
    data: &'a [f32],
}

impl<'a> TensorView<'a> {
    /// The elements.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The shape of one row (every dimension but the first).
    pub fn row_shape(&self) -> &'a [usize] {
        self.shape.get(1..).unwrap_or(&[])
    }

    /// The number of rows (first dimension).
    pub fn batch(&self) -> usize {
        let row = numel(self.row_shape()).unwrap_or(1).max(1);
        if self.shape.is_empty() {
            0
        } else {
            self.data.len() / row
        }
    }

    /// Rows `start..end` of the first dimension.
    pub fn rows(&self, start: usize, end: usize) -> Result<TensorView<'a>> {
        let b = self.batch();
        if start > end || end > b {
            return Err(crate::error::Error::Invalid(format!(
                "rows {start}..{end} out of range for a batch of {b}"
            )));
        }
        let row = numel(self.row_shape()).unwrap_or(0);
        Ok(TensorView {
            shape: self.shape,
            data: &self.data[start * row..end * row],
        })
    }

    /// Copies the view into an owned tensor (shape `[batch, row_shape..]`).
    pub fn to_tensor(&self) -> Tensor {
        let mut shape = self.shape.to_vec();
        if let Some(d) = shape.first_mut() {
            *d = self.batch();
        }
        Tensor {
            data: self.data.to_vec(),
            shape,
        }
    }
}
