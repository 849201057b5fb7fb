//! What every handler is given: the [`Tessera`] handle, plus what only HTTP needs,
//! built once at start-up and shared by all workers.

use actix_web::web::Bytes;

use crate::auth::Tessera;
use crate::config::Settings;

pub(crate) struct AppState {
    pub tessera: Tessera,
    /// RFC 8414 metadata, serialised once.
    pub metadata: Bytes,
    /// The OpenAPI document, serialised once.
    pub openapi: Bytes,
    /// Paths of the OpenAPI document with the methods each allows: every other method
    /// gets a 405 with an `Allow` header.
    pub api_paths: Vec<(String, String)>,
}

impl AppState {
    /// `metadata` is the RFC 8414 document, `document` the OpenAPI one (see
    /// [`super::wellknown::metadata_document`] and [`super::docs::document`]).
    pub(crate) fn new(
        tessera: Tessera,
        metadata: &serde_json::Value,
        document: utoipa::openapi::OpenApi,
    ) -> Self {
        let metadata = serde_json::to_vec(metadata)
            .expect("metadata serialises")
            .into();
        let api_paths = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| (path.clone(), super::allowed_methods(item)))
            .collect();
        let openapi = document
            .to_json()
            .expect("the OpenAPI document serialises")
            .into();
        Self {
            tessera,
            metadata,
            openapi,
            api_paths,
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        self.tessera.settings()
    }
}
