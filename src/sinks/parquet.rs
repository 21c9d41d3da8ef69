//! Sinks: writes a view as Parquet, one object per Hive partition
//! (`table/period=2026-03/data.parquet`), or one object for an unpartitioned table.
//!
//! kpipe writes the objects itself instead of using DataFusion's writer: the object
//! names are fixed, so a rerun replaces a partition's object instead of adding a second
//! file next to it, and each object is uploaded whole when it is closed.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, partition};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::logical_expr::cast as cast_expr;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{DataFrame, col};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;

use crate::error::{KpipeError, Result};

/// The object name inside each partition folder.
pub const DATA_FILE: &str = "data.parquet";

/// Hive's name for a null partition value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One object written.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: ObjectPath,
    pub rows: usize,
}

/// Writes `frame` under `table` in `store`, one object per distinct value of
/// `partition_by`. Rows are sorted so that reruns on the same inputs write the same
/// bytes.
pub async fn write_table(
    frame: DataFrame,
    store: Arc<dyn ObjectStore>,
    table: &ObjectPath,
    partition_by: &[String],
) -> Result<Vec<WrittenFile>> {
    let engine = |e| KpipeError::from_engine(e, &format!("writing {table}"));
    let frame = portable(frame).map_err(engine)?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let data_schema = data_schema(&schema, partition_by);
    let frame = frame
        .sort(sort_order(&schema, partition_by))
        .map_err(engine)?;
    let mut stream = frame.execute_stream().await.map_err(engine)?;

    let mut written = Vec::new();
    let mut open: Option<(Vec<String>, PartWriter)> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(engine)?;
        if batch.num_rows() == 0 {
            continue;
        }
        for (values, slice) in split(&batch, partition_by)? {
            let data = slice
                .project(&data_indices(&schema, partition_by))
                .map_err(arrow)?;
            if open.as_ref().is_none_or(|(current, _)| *current != values) {
                if let Some((_, writer)) = open.take() {
                    written.push(writer.finish().await?);
                }
                let path = object_for(table, partition_by, &values)?;
                open = Some((
                    values,
                    PartWriter::try_new(Arc::clone(&store), path, &data_schema)?,
                ));
            }
            open.as_mut()
                .expect("a writer was just opened")
                .1
                .write(&data)
                .await?;
        }
    }
    match open {
        Some((_, writer)) => written.push(writer.finish().await?),
        // An unpartitioned table with no rows still gets a file, so readers see its schema.
        None if partition_by.is_empty() => {
            let writer = PartWriter::try_new(store, object_for(table, &[], &[])?, &data_schema)?;
            written.push(writer.finish().await?);
        }
        None => {}
    }
    Ok(written)
}

/// Casts string and binary views to plain strings and binaries: DataFusion reads
/// Parquet text as views, but not every reader (older pyarrow, Power BI) takes them.
fn portable(frame: DataFrame) -> datafusion::common::Result<DataFrame> {
    let fields = frame.schema().fields().clone();
    if !fields
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return Ok(frame);
    }
    let columns = fields.iter().map(|f| {
        let column = col(format!("\"{}\"", f.name()));
        match f.data_type() {
            DataType::Utf8View => cast_expr(column, DataType::Utf8).alias(f.name()),
            DataType::BinaryView => cast_expr(column, DataType::Binary).alias(f.name()),
            _ => column,
        }
    });
    frame.select(columns.collect::<Vec<_>>())
}

/// Partition columns first, then every other column whose type sorts, so that the order
/// of rows is a function of the rows alone.
fn sort_order(schema: &Schema, partition_by: &[String]) -> Vec<datafusion::logical_expr::SortExpr> {
    let quoted = |name: &str| col(format!("\"{name}\""));
    let mut order: Vec<_> = partition_by
        .iter()
        .map(|c| quoted(c).sort(true, true))
        .collect();
    for field in schema.fields() {
        if !partition_by.contains(field.name()) && sortable(field.data_type()) {
            order.push(quoted(field.name()).sort(true, true));
        }
    }
    order
}

fn sortable(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean
        )
}

fn data_indices(schema: &Schema, partition_by: &[String]) -> Vec<usize> {
    (0..schema.fields().len())
        .filter(|&i| !partition_by.contains(schema.field(i).name()))
        .collect()
}

/// The schema of the files: partition columns live in folder names, as Hive does it.
fn data_schema(schema: &Schema, partition_by: &[String]) -> SchemaRef {
    Arc::new(
        schema
            .project(&data_indices(schema, partition_by))
            .expect("indices are in range"),
    )
}

/// Splits a batch sorted by the partition columns into runs of equal partition values.
fn split(batch: &RecordBatch, partition_by: &[String]) -> Result<Vec<(Vec<String>, RecordBatch)>> {
    if partition_by.is_empty() {
        return Ok(vec![(Vec::new(), batch.clone())]);
    }
    let columns: Vec<ArrayRef> = partition_by
        .iter()
        .map(|name| {
            let column = batch
                .column_by_name(name)
                .expect("partition columns were checked");
            cast(column, &DataType::Utf8).map_err(arrow)
        })
        .collect::<Result<_>>()?;
    let runs = partition(&columns).map_err(arrow)?;
    Ok(runs
        .ranges()
        .into_iter()
        .map(|range| {
            let values = columns
                .iter()
                .map(|c| {
                    let strings = c
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("cast to Utf8");
                    if strings.is_null(range.start) {
                        NULL_PARTITION.to_string()
                    } else {
                        strings.value(range.start).to_string()
                    }
                })
                .collect();
            (values, batch.slice(range.start, range.end - range.start))
        })
        .collect())
}

/// `table/col=value/.../data.parquet`, values escaped as Hive escapes them.
pub fn object_for(
    table: &ObjectPath,
    partition_by: &[String],
    values: &[String],
) -> Result<ObjectPath> {
    let mut path = table.to_string();
    for (column, value) in partition_by.iter().zip(values) {
        path = format!("{path}/{column}={}", escape(value));
    }
    let path = format!("{path}/{DATA_FILE}");
    ObjectPath::parse(&path).map_err(|e| KpipeError::Data(format!("partition path {path}: {e}")))
}

/// Percent-escapes the characters Hive escapes in partition values.
fn escape(value: &str) -> String {
    // `.` and `..` are not valid object names; escape them whole.
    if value == "." || value == ".." {
        return value.replace('.', "%2E");
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() || "\"#%'*/:=?\\{[]^".contains(c) {
            for byte in c.to_string().bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn arrow(e: datafusion::arrow::error::ArrowError) -> KpipeError {
    KpipeError::Internal(format!("splitting output rows: {e}"))
}

/// One Parquet object being written. The object appears when `finish` uploads it.
struct PartWriter {
    path: ObjectPath,
    rows: usize,
    writer: AsyncArrowWriter<BufWriter>,
}

impl PartWriter {
    fn try_new(store: Arc<dyn ObjectStore>, path: ObjectPath, schema: &SchemaRef) -> Result<Self> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("3 is a zstd level"),
            ))
            .set_created_by(format!("kpipe {}", env!("CARGO_PKG_VERSION")))
            .build();
        // The buffered writer uploads the object whole when closed (a single PUT, or a
        // multipart upload completed at the end), so no reader sees half a file.
        let object = BufWriter::new(store, path.clone());
        let writer = AsyncArrowWriter::try_new(object, Arc::clone(schema), Some(properties))
            .map_err(|e| KpipeError::Internal(format!("opening {path}: {e}")))?;
        Ok(Self {
            path,
            rows: 0,
            writer,
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        self.writer
            .write(batch)
            .await
            .map_err(|e| parquet_error(&self.path, e))
    }

    async fn finish(self) -> Result<WrittenFile> {
        let path = self.path;
        self.writer
            .close()
            .await
            .map_err(|e| parquet_error(&path, e))?;
        Ok(WrittenFile {
            path,
            rows: self.rows,
        })
    }
}

/// Writing fails mostly because storage does; the parquet error wraps the store's.
fn parquet_error(path: &ObjectPath, e: datafusion::parquet::errors::ParquetError) -> KpipeError {
    KpipeError::Transient(format!("writing {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_escaped_like_hive() {
        let table = ObjectPath::from("out/scorecard");
        let path = object_for(
            &table,
            &["period".into(), "team".into()],
            &["2026-03".into(), "a/b=c".into()],
        )
        .unwrap();
        assert_eq!(
            path.as_ref(),
            "out/scorecard/period=2026-03/team=a%2Fb%3Dc/data.parquet"
        );
        assert_eq!(
            object_for(&table, &[], &[]).unwrap().as_ref(),
            "out/scorecard/data.parquet"
        );
    }
}
