//! IDX loader: `parse_idx` on arbitrary bytes and ranks (including absurd ranks), well-formed
//! headers with random dimensions and data lengths (must succeed exactly when the length
//! matches), and `read_idx` on files that are raw bytes or gzip streams (valid, truncated or
//! corrupted). Requires no panic, and that an `Ok` array is consistent with its dimensions.
#![no_main]

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use nnkern::data::{idx::parse_idx, read_idx, DataError};
use nnkern_fuzz::Input;
use std::io::Write;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mode = inp.byte() % 4;
    let rank = match inp.byte() {
        250 => 256,
        251 => 0x1_0000_0001,
        252 => usize::MAX,
        253 => usize::MAX / 4 + 1,
        b => b as usize % 5,
    };
    let path = Path::new("fuzz.idx");
    let bytes = match mode {
        0 => data.to_vec(),
        _ => {
            // A well-formed header: magic, `rank` dimensions, then some data bytes.
            let r = rank.min(4);
            let dims: Vec<u32> = (0..r).map(|_| (inp.byte() % 5) as u32).collect();
            let count: usize = dims.iter().map(|&d| d as usize).product();
            let extra = inp.byte() as i64 % 3 - 1; // one short, exact, one long
            let len = (count as i64 + extra).max(0) as usize;
            let mut b = vec![0, 0, 8, r as u8];
            for d in &dims {
                b.extend_from_slice(&d.to_be_bytes());
            }
            b.extend((0..len).map(|i| i as u8));
            let got = parse_idx(path, &b, r);
            assert_eq!(got.is_ok(), len == count, "{dims:?} +{extra}: {got:?}");
            b
        }
    };
    if let Ok(a) = parse_idx(path, &bytes, rank) {
        assert_eq!(a.dims.len(), rank);
        assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
    }
    if mode >= 2 {
        // Through a gzip file: valid, or with a byte flipped / cut short.
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&bytes).unwrap();
        let mut gz = enc.finish().unwrap();
        let damage = inp.byte();
        if damage % 3 == 1 && !gz.is_empty() {
            let at = inp.byte() as usize % gz.len();
            gz[at] ^= 1 << (damage % 8);
        } else if damage % 3 == 2 {
            gz.truncate(inp.byte() as usize % (gz.len() + 1));
        }
        let file = std::env::temp_dir().join(format!("nnkern-fuzz-idx-{}.gz", std::process::id()));
        std::fs::write(&file, &gz).unwrap();
        let r = read_idx(&file, rank.min(4));
        if damage % 3 == 0 {
            // Intact gzip: the same verdict as parsing the bytes directly.
            let direct = parse_idx(&file, &bytes, rank.min(4));
            assert_eq!(r.is_ok(), direct.is_ok(), "{r:?} vs {direct:?}");
        }
        if let Err(e) = &r {
            assert!(
                matches!(e, DataError::Format { .. } | DataError::Gzip { .. }),
                "{e:?}"
            );
        }
        let _ = std::fs::remove_file(&file);
    }
});
