//! Sources: where rows enter. Each extract is a folder of CSV or Parquet files on object
//! storage; it becomes one table of the session with the columns its contract declares,
//! read by DataFusion's own listing tables so that the same plan can run on a cluster.

mod csv_header;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::empty::EmptyTable;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{DataFrame, SessionContext, col};
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore};

use crate::config::{Format, Pipeline, Source};
use crate::error::{KpipeError, Result};
use crate::storage::{Stores, object_path};

/// What was found for one source.
#[derive(Debug, Clone)]
pub struct SourceListing {
    pub name: String,
    /// The source's files, sorted by path.
    pub files: Vec<ObjectMeta>,
    /// The folder held no object at all.
    pub absent: bool,
}

/// Registers every source of `pipeline` as an empty table with its declared schema, so
/// that views can be planned without reading anything.
pub fn register_declared(ctx: &SessionContext, pipeline: &Pipeline) -> Result<()> {
    for source in &pipeline.sources {
        let table = EmptyTable::new(source.schema(pipeline.timezone_name()));
        register(ctx, &source.name, Arc::new(table))?;
    }
    Ok(())
}

/// Lists every source's folder and registers it as a table over its files.
pub async fn register_all(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    stores: &mut Stores,
) -> Result<Vec<SourceListing>> {
    let mut listings = Vec::with_capacity(pipeline.sources.len());
    for source in &pipeline.sources {
        let store = stores.store_for(&source.url)?;
        let listing = list(source, store.as_ref()).await?;
        if listing.absent && source.required {
            return Err(KpipeError::Data(format!(
                "required extract `{}` is missing: no object under {}",
                source.name, source.url
            )));
        }
        let schema = source.schema(pipeline.timezone_name());
        if listing.files.is_empty() {
            register(ctx, &source.name, Arc::new(EmptyTable::new(schema)))?;
        } else {
            let table = match source.format {
                Format::Csv => csv_table(ctx, source, &schema, &listing.files, store).await?,
                Format::Parquet => {
                    parquet_table(ctx, source, &schema, &listing.files, store).await?
                }
            };
            ctx.register_table(source.name.as_str(), table.into_view())
                .map_err(|e| {
                    KpipeError::from_engine(e, &format!("registering source {}", source.name))
                })?;
        }
        tracing::debug!(source = %source.name, files = listing.files.len(), "source listed");
        listings.push(listing);
    }
    Ok(listings)
}

fn register(ctx: &SessionContext, name: &str, table: Arc<dyn TableProvider>) -> Result<()> {
    ctx.register_table(name, table)
        .map(|_| ())
        .map_err(|e| KpipeError::from_engine(e, &format!("registering source {name}")))
}

/// The source's files: objects under its folder with the format's extension.
async fn list(source: &Source, store: &dyn ObjectStore) -> Result<SourceListing> {
    let prefix = object_path(&source.url)?;
    let objects: Vec<ObjectMeta> =
        store
            .list(Some(&prefix))
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(KpipeError::from_store(
                    e,
                    &format!("listing {}", source.url),
                )),
            })?;
    let absent = objects.is_empty() && !local_folder_exists(source);
    let extension = source.format.extension();
    let mut files: Vec<ObjectMeta> = objects
        .into_iter()
        .filter(|o| {
            o.location
                .as_ref()
                .to_ascii_lowercase()
                .ends_with(extension)
        })
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(SourceListing {
        name: source.name.clone(),
        files,
        absent,
    })
}

/// Object stores have no folders; on local disk an existing empty folder is an empty
/// extract, not a missing one.
fn local_folder_exists(source: &Source) -> bool {
    source.url.scheme() == "file" && source.url.to_file_path().is_ok_and(|p| p.is_dir())
}

/// The URL of one object of the source's store.
fn file_url(source: &Source, meta: &ObjectMeta) -> Result<ListingTableUrl> {
    let mut url = source.url.clone();
    url.set_path(&format!("/{}", meta.location));
    ListingTableUrl::parse(url.as_str())
        .map_err(|e| KpipeError::Internal(format!("object URL {url}: {e}")))
}

/// CSV files are read by header name, not position: files are grouped by header, each
/// group is a listing table, and the groups are unioned on the declared columns.
async fn csv_table(
    ctx: &SessionContext,
    source: &Source,
    schema: &SchemaRef,
    files: &[ObjectMeta],
    store: Arc<dyn ObjectStore>,
) -> Result<DataFrame> {
    let mut groups: Vec<(Vec<String>, Vec<ListingTableUrl>)> = Vec::new();
    for meta in files {
        let header = csv_header::read(store.as_ref(), meta, &source.url).await?;
        for column in &source.columns {
            if !header.contains(&column.name) {
                return Err(KpipeError::Data(format!(
                    "{}: the header has no column `{}`, which extract `{}` requires",
                    display(source, meta),
                    column.name,
                    source.name
                )));
            }
        }
        let url = file_url(source, meta)?;
        match groups.iter_mut().find(|(h, _)| *h == header) {
            Some((_, urls)) => urls.push(url),
            None => groups.push((header, vec![url])),
        }
    }

    // RFC 4180: quoted fields may hold commas, doubled quotes and newlines.
    let format = || {
        CsvFormat::default()
            .with_has_header(true)
            .with_newlines_in_values(true)
            .with_quote(b'"')
            .with_escape(None)
    };
    let mut frames = Vec::with_capacity(groups.len());
    for (header, urls) in groups {
        let fields: Vec<Field> = header
            .iter()
            .map(|name| match schema.field_with_name(name) {
                Ok(field) => field.clone(),
                Err(_) => Field::new(name, DataType::Utf8, true),
            })
            .collect();
        let file_schema = Arc::new(Schema::new(fields));
        let frame = listing_frame(ctx, source, Arc::new(format()), file_schema, urls)?;
        frames.push(frame);
    }
    union_declared(source, frames)
}

async fn parquet_table(
    ctx: &SessionContext,
    source: &Source,
    schema: &SchemaRef,
    files: &[ObjectMeta],
    store: Arc<dyn ObjectStore>,
) -> Result<DataFrame> {
    let format = Arc::new(ParquetFormat::default());
    let state = ctx.state();
    let mut urls = Vec::with_capacity(files.len());
    for meta in files {
        let file_schema = format
            .infer_schema(&state, &store, std::slice::from_ref(meta))
            .await
            .map_err(|e| KpipeError::from_engine(e, &display(source, meta)))?;
        for column in &source.columns {
            if file_schema.field_with_name(&column.name).is_err() {
                return Err(KpipeError::Data(format!(
                    "{}: the file has no column `{}`, which extract `{}` requires",
                    display(source, meta),
                    column.name,
                    source.name
                )));
            }
        }
        urls.push(file_url(source, meta)?);
    }
    let frame = listing_frame(ctx, source, format, Arc::clone(schema), urls)?;
    union_declared(source, vec![frame])
}

fn listing_frame(
    ctx: &SessionContext,
    source: &Source,
    format: Arc<dyn FileFormat>,
    schema: SchemaRef,
    urls: Vec<ListingTableUrl>,
) -> Result<DataFrame> {
    let options = ListingOptions::new(format).with_file_extension(source.format.extension());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)
        .map_err(|e| KpipeError::from_engine(e, &format!("reading source {}", source.name)))?;
    ctx.read_table(Arc::new(table))
        .map_err(|e| KpipeError::from_engine(e, &format!("reading source {}", source.name)))
}

/// The declared columns, in declared order, of every frame, unioned.
fn union_declared(source: &Source, frames: Vec<DataFrame>) -> Result<DataFrame> {
    let engine = |e| KpipeError::from_engine(e, &format!("reading source {}", source.name));
    let columns: Vec<_> = source
        .columns
        .iter()
        .map(|c| col(format!("\"{}\"", c.name)))
        .collect();
    let mut frames = frames.into_iter();
    let first = frames
        .next()
        .ok_or_else(|| KpipeError::Internal("a source with no frame".into()))?;
    let mut union = first.select(columns.clone()).map_err(engine)?;
    for frame in frames {
        union = union
            .union(frame.select(columns.clone()).map_err(engine)?)
            .map_err(engine)?;
    }
    Ok(union)
}

fn display(source: &Source, meta: &ObjectMeta) -> String {
    format!(
        "{}://{}/{}",
        source.url.scheme(),
        source.url.host_str().unwrap_or_default(),
        meta.location
    )
}
