//! Sources: reads the files of one extract as text, keeping where each row came from.
//!
//! Every declared column comes out as text (`Utf8`, null for an empty CSV field) with
//! three more columns: `_file`, `_line` (the physical line where a CSV record starts,
//! the header being line 1, or the 0-based row index in a Parquet file) and
//! `_malformed` (why the record itself is broken, else null). The contract checks then
//! run on these columns as one vectorised DataFusion plan (`contract.rs`).
//!
//! Parquet columns are turned into the CSV form of their value, so both formats go
//! through the same checks. A file whose structure is wrong (a missing column, bytes
//! that are not UTF-8, a Parquet type the contract does not allow) stops the run with
//! an error naming the file, and the line where there is one.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::config::{ColumnType, Format, Source};
use crate::error::KpipeError;

/// Where each raw row came from.
pub const FILE: &str = "_file";
pub const LINE: &str = "_line";
pub const MALFORMED: &str = "_malformed";

/// Rows per batch.
const BATCH_ROWS: usize = 8192;

/// The schema of the raw rows of `source`: declared columns as text, then provenance.
pub fn raw_schema(source: &Source) -> SchemaRef {
    let mut fields: Vec<Field> = source
        .columns
        .iter()
        .map(|c| Field::new(&c.name, DataType::Utf8, true))
        .collect();
    fields.push(Field::new(FILE, DataType::Utf8, false));
    fields.push(Field::new(LINE, DataType::Int64, false));
    fields.push(Field::new(MALFORMED, DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// One file of an extract, read as one partition.
#[derive(Debug)]
pub struct FileScan {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
    /// The file's URL, for provenance and errors.
    name: String,
    format: Format,
    columns: Vec<(String, ColumnType)>,
    schema: SchemaRef,
}

impl FileScan {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        meta: ObjectMeta,
        name: String,
        source: &Source,
    ) -> Self {
        Self {
            store,
            meta,
            name,
            format: source.format,
            columns: source
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.data_type))
                .collect(),
            schema: raw_schema(source),
        }
    }
}

impl PartitionStream for FileScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let file = FileInfo {
            store: Arc::clone(&self.store),
            meta: self.meta.clone(),
            name: self.name.clone(),
            columns: self.columns.clone(),
            schema: Arc::clone(&self.schema),
        };
        let batches = match self.format {
            Format::Csv => csv_batches(file).boxed(),
            Format::Parquet => parquet_batches(file).boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        ))
    }
}

#[derive(Clone)]
struct FileInfo {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
    name: String,
    columns: Vec<(String, ColumnType)>,
    schema: SchemaRef,
}

fn data_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(KpipeError::Data(message)))
}

fn store_error(error: object_store::Error, what: &str) -> DataFusionError {
    DataFusionError::External(Box::new(KpipeError::from_store(error, what)))
}

/// Builds the text columns of one batch.
struct BatchBuilder {
    columns: Vec<StringBuilder>,
    lines: Int64Builder,
    malformed: StringBuilder,
    rows: usize,
}

impl BatchBuilder {
    fn new(width: usize) -> Self {
        Self {
            columns: (0..width).map(|_| StringBuilder::new()).collect(),
            lines: Int64Builder::new(),
            malformed: StringBuilder::new(),
            rows: 0,
        }
    }

    fn finish(&mut self, file: &FileInfo) -> Result<RecordBatch, DataFusionError> {
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let mut names = StringBuilder::new();
        for _ in 0..self.rows {
            names.append_value(&file.name);
        }
        arrays.push(Arc::new(names.finish()));
        arrays.push(Arc::new(self.lines.finish()));
        arrays.push(Arc::new(self.malformed.finish()));
        self.rows = 0;
        Ok(RecordBatch::try_new(Arc::clone(&file.schema), arrays)?)
    }
}

/// CSV: header by name, then records in batches, each with the line it starts on.
fn csv_batches(
    file: FileInfo,
) -> impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> + Send {
    futures::stream::once(open_csv(file)).try_flatten()
}

type CsvReader = csv_async::AsyncReader<Box<dyn futures::AsyncRead + Send + Unpin>>;

async fn open_csv(
    file: FileInfo,
) -> Result<impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> + Send, DataFusionError>
{
    if file.meta.size == 0 {
        return Err(data_error(format!(
            "{}: the file is empty; a CSV extract starts with a header row",
            file.name
        )));
    }
    let what = format!("reading {}", file.name);
    let body = file
        .store
        .get(&file.meta.location)
        .await
        .map_err(|e| store_error(e, &what))?;
    let bytes = body
        .into_stream()
        .map_err(std::io::Error::other)
        .into_async_read();
    let boxed: Box<dyn futures::AsyncRead + Send + Unpin> = Box::new(bytes);
    let mut reader: CsvReader = csv_async::AsyncReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .create_reader(boxed);

    let header = reader
        .byte_headers()
        .await
        .map_err(|e| csv_error(&file.name, e))?
        .clone();
    for (i, field) in header.iter().enumerate() {
        if std::str::from_utf8(field).is_err() {
            return Err(data_error(format!(
                "{}:1: the header row is not UTF-8",
                file.name
            )));
        }
        if header.iter().take(i).any(|earlier| earlier == field) {
            let name = String::from_utf8_lossy(field);
            return Err(data_error(format!(
                "{}:1: the header names column `{name}` twice",
                file.name
            )));
        }
    }
    let mut positions = Vec::with_capacity(file.columns.len());
    for (name, _) in &file.columns {
        let found = header.iter().position(|h| h == name.as_bytes());
        match found {
            Some(i) => positions.push(i),
            None => {
                return Err(data_error(format!(
                    "{}: the header has no column `{name}`, which the extract requires",
                    file.name
                )));
            }
        }
    }
    let width = header.len();

    let state = (reader, file, positions, width, false);
    Ok(futures::stream::try_unfold(
        state,
        |(mut reader, file, positions, width, done)| async move {
            if done {
                return Ok(None);
            }
            let mut batch = BatchBuilder::new(positions.len());
            let mut record = csv_async::ByteRecord::new();
            let mut ended = false;
            while batch.rows < BATCH_ROWS {
                let more = reader
                    .read_byte_record(&mut record)
                    .await
                    .map_err(|e| csv_error(&file.name, e))?;
                if !more {
                    ended = true;
                    break;
                }
                let line = record.position().map_or(0, |p| p.line()) as i64;
                for ((builder, &i), (column, _)) in
                    batch.columns.iter_mut().zip(&positions).zip(&file.columns)
                {
                    match record.get(i) {
                        None | Some(b"") => builder.append_null(),
                        Some(bytes) => match std::str::from_utf8(bytes) {
                            Ok(text) => builder.append_value(text),
                            Err(_) => {
                                return Err(data_error(format!(
                                    "{}:{line}: column `{column}` is not UTF-8 text",
                                    file.name
                                )));
                            }
                        },
                    }
                }
                batch.lines.append_value(line);
                if record.len() == width {
                    batch.malformed.append_null();
                } else {
                    batch.malformed.append_value(format!(
                        "the record has {} fields, the header {width}",
                        record.len()
                    ));
                }
                batch.rows += 1;
            }
            if batch.rows == 0 {
                return Ok(None);
            }
            let out = batch.finish(&file)?;
            Ok(Some((out, (reader, file, positions, width, ended))))
        },
    ))
}

fn csv_error(name: &str, error: csv_async::Error) -> DataFusionError {
    let at = error
        .position()
        .map(|p| format!(":{}", p.line()))
        .unwrap_or_default();
    match error.kind() {
        csv_async::ErrorKind::Io(_) => DataFusionError::External(Box::new(KpipeError::Transient(
            format!("reading {name}{at}: {error}"),
        ))),
        _ => data_error(format!("{name}{at}: not valid CSV: {error}")),
    }
}

/// An `AsyncFileReader` over an object store, for the Parquet reader.
struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, ParquetError>> {
        async move {
            self.store
                .get_range(&self.meta.location, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>, ParquetError>> {
        async move {
            let size = self.meta.size;
            let metadata = ParquetMetaDataReader::new().with_prefetch_hint(Some(64 * 1024));
            Ok(Arc::new(metadata.load_and_finish(self, size).await?))
        }
        .boxed()
    }
}

/// Parquet: the declared columns by name, each turned into the text of its CSV form.
fn parquet_batches(
    file: FileInfo,
) -> impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> + Send {
    futures::stream::once(open_parquet(file)).try_flatten()
}

async fn open_parquet(
    file: FileInfo,
) -> Result<impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> + Send, DataFusionError>
{
    let reader = ObjectReader {
        store: Arc::clone(&file.store),
        meta: file.meta.clone(),
    };
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| parquet_error(&file.name, e))?;
    let file_schema = Arc::clone(builder.schema());
    let mut indices = Vec::with_capacity(file.columns.len());
    for (name, declared) in &file.columns {
        let (i, field) = file_schema.column_with_name(name).ok_or_else(|| {
            data_error(format!(
                "{}: the file has no column `{name}`, which the extract requires",
                file.name
            ))
        })?;
        if !allowed(field.data_type(), *declared) {
            return Err(data_error(format!(
                "{}: column `{name}` is stored as {}, which a {declared:?} column does not allow",
                file.name,
                field.data_type()
            )));
        }
        indices.push(i);
    }
    let stream = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| parquet_error(&file.name, e))?;
    let mut next_row: i64 = 0;
    Ok(stream.map(move |batch| {
        let batch = batch.map_err(|e| parquet_error(&file.name, e))?;
        let rows = batch.num_rows();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(indices.len() + 3);
        for &i in &indices {
            arrays.push(cast(batch.column(i), &DataType::Utf8)?);
        }
        arrays.push(Arc::new(datafusion::arrow::array::StringArray::from(
            vec![file.name.as_str(); rows],
        )));
        arrays.push(Arc::new(
            datafusion::arrow::array::Int64Array::from_iter_values(
                next_row..next_row + rows as i64,
            ),
        ));
        arrays.push(Arc::new(datafusion::arrow::array::StringArray::new_null(
            rows,
        )));
        next_row += rows as i64;
        Ok(RecordBatch::try_new(Arc::clone(&file.schema), arrays)?)
    }))
}

fn parquet_error(name: &str, error: ParquetError) -> DataFusionError {
    match error {
        ParquetError::External(inner) => match inner.downcast::<object_store::Error>() {
            Ok(store) => store_error(*store, &format!("reading {name}")),
            Err(other) => data_error(format!("{name}: not a readable Parquet file: {other}")),
        },
        other => data_error(format!("{name}: not a readable Parquet file: {other}")),
    }
}

/// The Parquet types extracts.md allows for each declared type, besides text in the
/// CSV form. Timestamps must be instants (carry a zone); money must not be a float.
fn allowed(stored: &DataType, declared: ColumnType) -> bool {
    use DataType as D;
    let text = matches!(stored, D::Utf8 | D::LargeUtf8 | D::Utf8View);
    let integer = stored.is_integer();
    text || match declared {
        ColumnType::String => false,
        ColumnType::Int => integer,
        ColumnType::Double => {
            integer
                || stored.is_floating()
                || matches!(stored, D::Decimal128(..) | D::Decimal256(..))
        }
        ColumnType::Decimal => {
            integer || matches!(stored, D::Decimal128(_, s) | D::Decimal256(_, s) if *s <= 2)
        }
        ColumnType::Bool => matches!(stored, D::Boolean),
        ColumnType::Date => matches!(stored, D::Date32 | D::Date64),
        ColumnType::Timestamp => matches!(stored, D::Timestamp(_, Some(_))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    #[test]
    fn parquet_types_follow_the_contract() {
        assert!(allowed(
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Timestamp
        ));
        assert!(!allowed(
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::Timestamp
        ));
        assert!(allowed(&DataType::Decimal128(10, 2), ColumnType::Decimal));
        assert!(!allowed(&DataType::Decimal128(10, 3), ColumnType::Decimal));
        assert!(!allowed(&DataType::Float64, ColumnType::Decimal));
        assert!(allowed(&DataType::Int32, ColumnType::Decimal));
        assert!(allowed(&DataType::Utf8, ColumnType::Date));
        assert!(!allowed(&DataType::Int64, ColumnType::String));
    }
}
