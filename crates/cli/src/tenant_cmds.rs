//! `evident tenant …` and `evident api-key …`: the HTTP service's tenants
//! and API keys, managed on the data directory directly.
//!
//! These work while `evident serve` runs on the same directory: each change
//! is one SQLite transaction, and the server reads keys and tenants from
//! the database on every request, so a revocation or a suspension applies
//! to its next request.

use clap::{Args, Subcommand};
use evident_core::ErrorCode;
use evident_core::entry::format_ts;
use evident_server::apikey::{self, Scope, parse_scopes};
use evident_store::sequencer::system_clock;
use evident_store::{ApiKeyRecord, StoreError, TenantInfo, TenantStatus, check_tenant_name};
use serde_json::{Value, json};

use crate::Format;
use crate::common::{CmdError, DataArgs, print_json};

/// Manage tenants: the owners of logs and API keys.
///
/// A tenant's name is the first part of its logs' paths (TENANT/LOG):
/// `[a-z0-9][a-z0-9_-]{0,62}`; names starting with `_` are reserved for
/// the system. Tenants are never deleted: a suspended tenant keeps its
/// logs and keys, and every one of its keys is refused until it is
/// resumed.
#[derive(Debug, Args)]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant, active.
    ///
    /// Fails with tenant.exists if it is already there, tenant.bad_name if
    /// the name breaks the rule, tenant.reserved if it starts with `_`.
    Create(TenantNameArgs),
    /// List the tenants by name, with their status, creation time and the
    /// time their status last changed.
    List(FormatArgs),
    /// Suspend a tenant: every one of its API keys is refused, from the
    /// server's next request on, until the tenant is resumed.
    ///
    /// Nothing is deleted and no key is revoked. Suspending a suspended
    /// tenant changes nothing.
    Suspend(TenantNameArgs),
    /// Resume a suspended tenant: its unrevoked API keys work again.
    ///
    /// Resuming an active tenant changes nothing.
    Resume(TenantNameArgs),
}

#[derive(Debug, Args)]
struct TenantNameArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The tenant's name.
    name: String,
    /// Output format: json prints the tenant as stored.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
struct FormatArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

impl TenantArgs {
    /// The output format of the subcommand.
    pub fn format(&self) -> Format {
        match &self.command {
            TenantCommand::Create(a) | TenantCommand::Suspend(a) | TenantCommand::Resume(a) => {
                a.format
            }
            TenantCommand::List(a) => a.format,
        }
    }
}

/// Issue, list and revoke API keys: how clients of the HTTP service
/// authenticate.
///
/// A key acts for one tenant, within its scopes: append, read, verify,
/// admin. Its token, `evk_<id>_<secret>`, is printed once when the key is
/// issued; only its SHA-256 is stored, so a lost token cannot be shown
/// again: revoke the key and issue another. Keys are revoked, never
/// deleted, so the record of who could write stays.
#[derive(Debug, Args)]
pub struct ApiKeyArgs {
    #[command(subcommand)]
    command: ApiKeyCommand,
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Issue a new API key for a tenant and print its token, once.
    ///
    /// Text output is the token alone on standard output (a notice goes to
    /// standard error), so `TOKEN=$(evident api-key issue …)` captures just
    /// the token. A suspended tenant may be given keys; they are refused
    /// until it is resumed.
    Issue(IssueArgs),
    /// List every API key, revoked ones included, in the order issued: id,
    /// tenant, scopes, creation and revocation times. Never a token or a
    /// hash.
    List(FormatArgs),
    /// Revoke an API key: the server refuses it from its next request on.
    ///
    /// Revocation is final; the key stays listed with the time it was
    /// revoked. Revoking a revoked key changes nothing.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
struct IssueArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The tenant the key acts for; it must exist.
    #[arg(long)]
    tenant: String,
    /// What the key may do: a comma-separated list of append, read, verify
    /// and admin.
    #[arg(long)]
    scopes: String,
    /// Output format: json prints {id, api_key, tenant, scopes}.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The key's id, as `api-key list` shows it (a whole token is accepted
    /// too: its id is used).
    id: String,
    /// Output format: json prints the key as stored.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

impl ApiKeyArgs {
    /// The output format of the subcommand.
    pub fn format(&self) -> Format {
        match &self.command {
            ApiKeyCommand::Issue(a) => a.format,
            ApiKeyCommand::List(a) => a.format,
            ApiKeyCommand::Revoke(a) => a.format,
        }
    }
}

fn now() -> String {
    format_ts(system_clock())
}

fn tenant_json(t: &TenantInfo) -> Value {
    json!({
        "name": t.name,
        "status": t.status.as_str(),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "tenant": k.tenant,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

/// Runs `tenant …`.
pub fn tenant(args: &TenantArgs) -> Result<(), CmdError> {
    let (a, status) = match &args.command {
        TenantCommand::List(a) => return list_tenants(a),
        TenantCommand::Create(a) => return create_tenant(a),
        TenantCommand::Suspend(a) => (a, TenantStatus::Suspended),
        TenantCommand::Resume(a) => (a, TenantStatus::Active),
    };
    user_tenant(&a.name)?;
    let mut opened = a.data.open()?;
    let t = opened.store.set_tenant_status(&a.name, status, &now())?;
    match a.format {
        Format::Json => print_json(&tenant_json(&t)),
        Format::Text => println!("tenant {}: {} (since {})", t.name, t.status, t.updated_at),
    }
    Ok(())
}

/// A tenant an operator may create, suspend or resume: any valid name
/// but the system's own (which the store accepts, for the server).
fn user_tenant(name: &str) -> Result<(), CmdError> {
    if name.starts_with('_') {
        return Err(StoreError::TenantReserved {
            name: name.chars().take(64).collect(),
        }
        .into());
    }
    check_tenant_name(name).map_err(CmdError::from)
}

fn create_tenant(a: &TenantNameArgs) -> Result<(), CmdError> {
    user_tenant(&a.name)?;
    let mut opened = a.data.open()?;
    let t = opened.store.create_tenant(&a.name, &now())?;
    match a.format {
        Format::Json => print_json(&tenant_json(&t)),
        Format::Text => println!("created tenant {} ({})", t.name, t.status),
    }
    Ok(())
}

fn list_tenants(a: &FormatArgs) -> Result<(), CmdError> {
    let mut opened = a.data.open()?;
    let tenants = opened.store.tenants()?;
    match a.format {
        Format::Json => print_json(&json!({
            "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>(),
        })),
        Format::Text => {
            for t in &tenants {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.name, t.status, t.created_at, t.updated_at
                );
            }
        }
    }
    Ok(())
}

/// Runs `api-key …`.
pub fn api_key(args: &ApiKeyArgs) -> Result<(), CmdError> {
    match &args.command {
        ApiKeyCommand::Issue(a) => issue(a),
        ApiKeyCommand::List(a) => list_keys(a),
        ApiKeyCommand::Revoke(a) => revoke(a),
    }
}

fn issue(a: &IssueArgs) -> Result<(), CmdError> {
    check_tenant_name(&a.tenant)?;
    let scopes = parse_scopes(&a.scopes).map_err(|e| CmdError::new(e.code(), e.to_string()))?;
    // Only the system tenant's keys administer the server: a tenant's key
    // with the admin scope would reach every other tenant. Issuing a
    // `_system` key here is how an operator replaces a lost admin.key.
    if scopes.contains(&Scope::Admin) && a.tenant != evident_core::entry::SYSTEM_TENANT {
        return Err(CmdError::new(
            "api_key.bad_scopes",
            format!(
                "the admin scope is only for the {} tenant",
                evident_core::entry::SYSTEM_TENANT
            ),
        ));
    }
    let mut opened = a.data.open()?;
    let tenant = opened
        .store
        .find_tenant(&a.tenant)?
        .ok_or_else(|| StoreError::TenantNotFound(a.tenant.clone()))?;
    let key = apikey::issue(&mut *opened.store, &tenant.name, &scopes, &now())?;
    match a.format {
        Format::Json => print_json(&json!({
            "id": key.id,
            "api_key": key.token,
            "tenant": key.record.tenant,
            "scopes": key.record.scopes,
        })),
        Format::Text => println!("{}", key.token),
    }
    eprintln!(
        "warning: this is the only time the token of API key {} (tenant {}, scopes {}) is shown; store it now: only its hash is kept",
        key.id,
        key.record.tenant,
        key.record.scopes.join(",")
    );
    if tenant.status == TenantStatus::Suspended {
        eprintln!(
            "note: tenant {0} is suspended; the key is refused until `evident tenant resume {0}`",
            tenant.name
        );
    }
    Ok(())
}

fn list_keys(a: &FormatArgs) -> Result<(), CmdError> {
    let mut opened = a.data.open()?;
    let keys = opened.store.api_keys()?;
    match a.format {
        Format::Json => print_json(&json!({
            "api_keys": keys.iter().map(key_json).collect::<Vec<_>>(),
        })),
        Format::Text => {
            for k in &keys {
                let state = match &k.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_owned(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{state}",
                    k.id,
                    k.tenant,
                    k.scopes.join(","),
                    k.created_at
                );
            }
        }
    }
    Ok(())
}

fn revoke(a: &RevokeArgs) -> Result<(), CmdError> {
    let id = apikey::key_id(&a.id).unwrap_or(&a.id);
    let mut opened = a.data.open()?;
    let before = opened
        .store
        .find_api_key(id)?
        .ok_or_else(|| StoreError::ApiKeyNotFound(id.to_owned()))?;
    let key = opened.store.revoke_api_key(id, &now())?;
    let already = before.0.revoked_at.is_some();
    match a.format {
        Format::Json => {
            let mut v = key_json(&key);
            v["already_revoked"] = json!(already);
            print_json(&v);
        }
        Format::Text => {
            let at = key.revoked_at.as_deref().unwrap_or("?");
            if already {
                println!("API key {} was already revoked at {at}", key.id);
            } else {
                println!(
                    "revoked API key {} of tenant {} at {at}",
                    key.id, key.tenant
                );
            }
        }
    }
    Ok(())
}
