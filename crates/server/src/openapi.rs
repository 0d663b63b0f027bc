//! `/openapi.json`, generated from the handlers' `#[utoipa::path]`
//! annotations, so the document cannot drift from the routes.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::{admin, entries, logs, ops};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Evident",
        description = "Tamper-evident audit and receipt ledger. Every error is \
            {\"error\":{\"code\",\"message\",\"request_id\"}} with a stable dotted code."
    ),
    paths(
        entries::append, entries::list, entries::get_one, entries::receipt,
        logs::list_logs, logs::checkpoint, logs::tile, logs::consistency, logs::verify,
        admin::create_tenant, admin::list_tenants, admin::suspend_tenant, admin::resume_tenant,
        admin::issue_key, admin::list_keys, admin::revoke_key, admin::get_writes, admin::set_writes,
        ops::health, ops::ready, ops::metrics, ops::openapi,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_json().unwrap_or_else(|_| "{}".to_owned())
}
