//! Object storage for sources and outputs: one `ObjectStore` per bucket (or local disk,
//! or an in-memory store), built from the URL and the environment. Credentials come only
//! from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), never from YAML.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::ObjectStore;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, RetryConfig};
use url::Url;

use crate::config::StorageSettings;
use crate::error::{KpipeError, Result};

/// The stores of one run, by `scheme://host`.
#[derive(Debug, Default, Clone)]
pub struct Stores {
    stores: HashMap<String, Arc<dyn ObjectStore>>,
    settings: StorageSettings,
}

impl Stores {
    /// Uses `store` for every URL under `base` (`scheme://host`), instead of building one
    /// from the environment. Tests use this to share an in-memory store with a run.
    pub fn with_store(mut self, base: &str, store: Arc<dyn ObjectStore>) -> Self {
        self.stores
            .insert(base.trim_end_matches('/').to_string(), store);
        self
    }

    /// Retries and timeouts for the cloud stores built from now on.
    pub fn configure(&mut self, settings: StorageSettings) {
        self.settings = settings;
    }

    /// The store that holds `url`, built on first use.
    pub fn store_for(&mut self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let base = base_of(url);
        if let Some(store) = self.stores.get(&base) {
            return Ok(Arc::clone(store));
        }
        let store = build(url, &self.settings)?;
        self.stores.insert(base, Arc::clone(&store));
        Ok(store)
    }

    /// Every store built or given so far, with its base URL.
    pub fn iter(&self) -> impl Iterator<Item = (Url, &Arc<dyn ObjectStore>)> {
        self.stores
            .iter()
            .map(|(base, store)| (Url::parse(base).expect("bases are URLs"), store))
    }
}

fn retry(settings: &StorageSettings) -> RetryConfig {
    let default = RetryConfig::default();
    RetryConfig {
        max_retries: settings.max_retries.unwrap_or(default.max_retries),
        retry_timeout: settings
            .retry_timeout_secs
            .map_or(default.retry_timeout, Duration::from_secs),
        backoff: default.backoff,
    }
}

/// Timeouts as client options, which keep the other options read from the environment
/// (such as `AWS_ALLOW_HTTP`).
fn client_options(settings: &StorageSettings) -> Vec<(ClientConfigKey, String)> {
    let mut options = Vec::new();
    if let Some(secs) = settings.request_timeout_secs {
        options.push((ClientConfigKey::Timeout, format!("{secs}s")));
    }
    if let Some(secs) = settings.connect_timeout_secs {
        options.push((ClientConfigKey::ConnectTimeout, format!("{secs}s")));
    }
    options
}

/// `scheme://host`, the key stores are registered under.
pub fn base_of(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
}

/// The path of `url` inside its store.
pub fn object_path(url: &Url) -> Result<ObjectPath> {
    ObjectPath::from_url_path(url.path())
        .map_err(|e| KpipeError::Internal(format!("`{url}` has no valid object path: {e}")))
}

fn build(url: &Url, settings: &StorageSettings) -> Result<Arc<dyn ObjectStore>> {
    let unusable = |e: object_store::Error| {
        KpipeError::Config(crate::config::Diagnostics(vec![
            crate::config::Diagnostic {
                file: "<environment>".into(),
                position: None,
                key: None,
                message: format!("cannot open object storage for `{url}`: {e}"),
            },
        ]))
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        // Removing the last file of a folder removes the folder, as on object stores.
        "file" => Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
        "memory" => Arc::new(InMemory::new()),
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry(settings));
            for (key, value) in client_options(settings) {
                builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            Arc::new(builder.build().map_err(unusable)?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry(settings));
            for (key, value) in client_options(settings) {
                builder = builder.with_config(GoogleConfigKey::Client(key), value);
            }
            Arc::new(builder.build().map_err(unusable)?)
        }
        "az" | "abfs" | "abfss" => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry(settings));
            for (key, value) in client_options(settings) {
                builder = builder.with_config(AzureConfigKey::Client(key), value);
            }
            Arc::new(builder.build().map_err(unusable)?)
        }
        other => {
            return Err(KpipeError::Internal(format!(
                "URL scheme `{other}` passed validation"
            )));
        }
    };
    Ok(store)
}

/// A URL fit for logs: without user, password or query.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}
