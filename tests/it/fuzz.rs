//! Random bytes and mutated CSV rows fed to the reading and contract path: every run
//! ends in a result (good rows, quarantined rows, or a bad-data error naming a file),
//! never a panic or an internal error. The generator is seeded, so a failure repeats.

use std::path::Path;

use chrono::NaiveDate;
use kpipe::Runner;
use kpipe::storage::Stores;

use crate::common::Vars;

const PIPELINE: &str = "\
name: fuzz
input_root: ${root}/in
output_root: ${root}/out
settings: {bad_rows: {max_count: 1000000, max_ratio: 1}}
sources:
  rows:
    format: csv
    unique_key: [id]
    columns:
      - {name: id, type: string, nullable: false}
      - {name: at, type: timestamp}
      - {name: day, type: date}
      - {name: n, type: int, min: 0}
      - {name: money, type: decimal}
      - {name: x, type: double}
      - {name: flag, type: bool}
      - {name: kind, type: string, enum: [a, b]}
      - {name: currency, type: string, currency: true}
  blobs:
    format: parquet
    columns:
      - {name: campaign_id, type: string}
outputs:
  everything:
";

const VALID: &str = "id,at,day,n,money,x,flag,kind,currency
r1,2026-03-01T09:15:00Z,2026-03-01,3,10.50,1.5e3,true,a,CNY
r2,2026-03-01T09:15:00.123+08:00,2026-02-28,0,0.00,-2,false,b,CNY
\"r3\",\"2026-03-31T23:59:59-05:00\",\"2026-03-31\",\"12\",\"-1.25\",\".5\",\"true\",\"a\",\"CNY\"
";

/// xorshift64*: small, seeded, good enough to vary inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A valid file with a few bytes replaced, inserted or removed, from a set that
/// matters to CSV (quotes, commas, newlines, a BOM, non-UTF-8) and to the types.
fn mutate(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = VALID.as_bytes().to_vec();
    let pieces: [&[u8]; 12] = [
        b"\"",
        b",",
        b"\n",
        b"\r\n",
        b"\xEF\xBB\xBF",
        b"\xff",
        b"9",
        b"-",
        b".",
        b"T",
        b"",
        b"\xe4\xb8\xad",
    ];
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(bytes.len() + 1);
        let piece = pieces[rng.below(pieces.len())];
        let end = match rng.below(3) {
            0 => at,
            1 => (at + 1).min(bytes.len()),
            _ => (at + 2).min(bytes.len()),
        };
        let piece: &[u8] = if end > at + 1 { b"" } else { piece };
        bytes.splice(at..end, piece.iter().copied());
    }
    bytes
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(400)).map(|_| rng.next() as u8).collect()
}

async fn run_once(dir: &Path, csv: &[u8], parquet: &[u8]) -> Result<(), kpipe::KpipeError> {
    let _ = std::fs::remove_dir_all(dir.join("out"));
    std::fs::create_dir_all(dir.join("in/rows")).unwrap();
    std::fs::create_dir_all(dir.join("in/blobs")).unwrap();
    std::fs::write(dir.join("in/rows/rows.csv"), csv).unwrap();
    std::fs::write(dir.join("in/blobs/blob.parquet"), parquet).unwrap();
    let vars = Vars(vec![("root", dir.display().to_string())]);
    let pipeline =
        kpipe::config::load(&dir.join("pipeline.yaml"), &vars).unwrap_or_else(|d| panic!("{d}"));
    Runner::new(pipeline, Stores::default())
        .run(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn mutated_and_random_extracts_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).unwrap();
    std::fs::create_dir_all(dir.path().join("sql")).unwrap();
    std::fs::write(dir.path().join("sql/everything.sql"), "SELECT * FROM rows").unwrap();
    let parquet =
        std::fs::read(crate::common::root().join("fixtures/campaigns/campaigns.parquet")).unwrap();

    // The valid file itself reads whole.
    run_once(dir.path(), VALID.as_bytes(), &parquet)
        .await
        .unwrap();

    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut ok, mut bad_data) = (0, 0);
    for round in 0..150 {
        let csv = if round % 4 == 3 {
            random_bytes(&mut rng)
        } else {
            mutate(&mut rng)
        };
        let blob = if round % 10 == 9 {
            random_bytes(&mut rng)
        } else {
            parquet.clone()
        };
        match run_once(dir.path(), &csv, &blob).await {
            Ok(()) => ok += 1,
            Err(e) if e.exit_code() == 65 => {
                bad_data += 1;
                assert!(
                    e.to_string().contains("/in/"),
                    "round {round}: the error names no file: {e}"
                );
            }
            Err(e) => panic!(
                "round {round}: {e}\ninput: {:?}",
                String::from_utf8_lossy(&csv)
            ),
        }
    }
    // Both kinds of outcome occurred, so the generator exercised both paths.
    assert!(ok > 0 && bad_data > 0, "ok {ok}, bad data {bad_data}");
}
