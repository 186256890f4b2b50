//! What one epoch measured, as a console line and as a JSON line (`--metrics`).

use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// The figures of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's images (softmax cross-entropy, natural log).
    pub train_loss: f64,
    /// Test accuracy after the epoch, in percent.
    pub test_acc: f64,
    /// Wall time of the epoch's training in seconds (evaluation excluded).
    pub epoch_s: f64,
    /// Training images per second (`images / epoch_s`).
    pub images_per_s: f64,
}

impl EpochStats {
    /// The one-line console summary, e.g.
    /// `epoch 1/5  train loss 0.1342  test acc 98.21%  9.81 s  6116 img/s`.
    pub fn console_line(&self, epochs: usize) -> String {
        format!(
            "epoch {}/{epochs}  train loss {:.4}  test acc {:.2}%  {:.2} s  {:.0} img/s",
            self.epoch, self.train_loss, self.test_acc, self.epoch_s, self.images_per_s
        )
    }

    /// One JSON object on one line: `{"epoch":1,"train_loss":0.1342,"test_acc":98.21,
    /// "epoch_s":9.81,"images_per_s":6116}` (rounded to meaningful digits).
    pub fn json_line(&self) -> String {
        // A struct, not `json!`, to keep the documented key order.
        #[derive(Serialize)]
        struct Line {
            epoch: usize,
            train_loss: f64,
            test_acc: f64,
            epoch_s: f64,
            images_per_s: u64,
        }
        let rounded = Line {
            epoch: self.epoch,
            train_loss: round_to(self.train_loss, 4),
            test_acc: round_to(self.test_acc, 2),
            epoch_s: round_to(self.epoch_s, 2),
            images_per_s: self.images_per_s.round() as u64,
        };
        serde_json::to_string(&rounded).expect("plain numbers serialize")
    }
}

/// `x` rounded to `digits` decimals (non-finite values are kept; serde_json writes them as null).
fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Appends JSON lines to a file created (truncated) at start, flushing after each epoch so a
/// run that is stopped keeps the epochs it finished.
pub struct MetricsWriter {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl MetricsWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<MetricsWriter, String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create metrics file {}: {e}", path.display()))?;
        Ok(MetricsWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Writes one epoch's JSON line.
    pub fn write(&mut self, stats: &EpochStats) -> Result<(), String> {
        writeln!(self.file, "{}", stats.json_line())
            .and_then(|_| self.file.flush())
            .map_err(|e| format!("cannot write metrics file {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_documented_keys_in_order() {
        let s = EpochStats {
            epoch: 1,
            train_loss: 0.134_217,
            test_acc: 98.7049,
            epoch_s: 9.8049,
            images_per_s: 6121.6,
        };
        assert_eq!(
            s.json_line(),
            r#"{"epoch":1,"train_loss":0.1342,"test_acc":98.7,"epoch_s":9.8,"images_per_s":6122}"#
        );
        assert_eq!(
            s.console_line(5),
            "epoch 1/5  train loss 0.1342  test acc 98.70%  9.80 s  6122 img/s"
        );
    }
}
