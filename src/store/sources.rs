//! Saving and loading a scan's sources of new instances (schema 6): typed
//! rows in, typed rows out; the plain columns beside `row_json` are there
//! for `imdsguard query`.

use rusqlite::{Connection, Transaction, params};

use super::{StoreError, enum_column};
use crate::aws::MetadataDefaults;
use crate::sources::{
    DefaultsSource, GroupLaunch, GroupSource, ImageSource, Sources, TemplateSource,
};

pub(super) fn save(tx: &Transaction<'_>, scan_id: i64, s: &Sources) -> Result<(), StoreError> {
    let mut stmt = tx.prepare(
        "INSERT INTO launch_templates (scan_id, account_id, region, template_id, name, default_version,
            latest_version, default_next_tokens, latest_next_tokens, decided_by, allows_v1, explanation, row_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for t in &s.templates {
        stmt.execute(params![
            scan_id,
            t.account_id,
            t.region,
            t.template_id,
            t.name,
            t.default_version,
            t.latest_version,
            t.default_next.http_tokens.as_str(),
            t.latest_next.http_tokens.as_str(),
            t.default_next.decided_by.as_str(),
            t.allows_v1(),
            t.default_next.explanation,
            serde_json::to_string(t).expect("rows serialize"),
        ])?;
    }
    let mut stmt = tx.prepare(
        "INSERT INTO auto_scaling_groups (scan_id, account_id, region, name, launch_kind, template_id, version_pin,
            launch_configuration, next_tokens, decided_by, allows_v1, instances, instances_allowing_v1,
            explanation, row_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for g in &s.groups {
        let (kind, template, pin, configuration) = match &g.launch {
            GroupLaunch::Template {
                template_id, pin, ..
            } => (
                "template",
                Some(template_id.as_str()),
                Some(pin.as_api()),
                None,
            ),
            GroupLaunch::Configuration { name } => {
                ("configuration", None, None, Some(name.as_str()))
            }
            GroupLaunch::Unknown { .. } => ("unknown", None, None, None),
        };
        stmt.execute(params![
            scan_id,
            g.account_id,
            g.region,
            g.name,
            kind,
            template,
            pin,
            configuration,
            g.next.as_ref().map(|n| n.http_tokens.as_str()),
            g.next.as_ref().map(|n| n.decided_by.as_str()),
            g.allows_v1(),
            g.instances,
            g.instances_allowing_v1,
            g.next.as_ref().map(|n| n.explanation.as_str()),
            serde_json::to_string(g).expect("rows serialize"),
        ])?;
    }
    let mut stmt = tx.prepare(
        "INSERT INTO region_defaults (scan_id, account_id, region, http_tokens, http_tokens_enforced, hop_limit,
            http_endpoint, instance_metadata_tags, managed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for d in &s.defaults {
        let v = &d.defaults;
        stmt.execute(params![
            scan_id,
            d.account_id,
            d.region,
            v.http_tokens.map(|t| t.as_str()),
            v.http_tokens_enforced.map(|t| t.as_str()),
            v.hop_limit,
            v.http_endpoint.map(|t| t.as_str()),
            v.instance_metadata_tags.map(|t| t.as_str()),
            v.managed_by.map(|m| match m {
                crate::aws::ManagedBy::Account => "account",
                crate::aws::ManagedBy::DeclarativePolicy => "declarative-policy",
            }),
        ])?;
    }
    let mut stmt = tx.prepare(
        "INSERT INTO images (scan_id, account_id, region, image_id, instances_allowing_v1)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for i in &s.images {
        stmt.execute(params![
            scan_id,
            i.account_id,
            i.region,
            i.image_id,
            i.instances_allowing_v1
        ])?;
    }
    Ok(())
}

fn rows<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    scan_id: i64,
    table: &str,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let json = stmt.query_map([scan_id], |r| r.get::<_, String>(0))?;
    json.map(|j| {
        serde_json::from_str(&j?)
            .map_err(|e| StoreError::Corrupt(format!("a row of {table} does not read back: {e}")))
    })
    .collect()
}

pub(super) fn load(conn: &Connection, scan_id: i64) -> Result<Sources, StoreError> {
    let templates: Vec<TemplateSource> = rows(
        conn,
        "SELECT row_json FROM launch_templates WHERE scan_id = ?1 ORDER BY account_id, region, template_id",
        scan_id,
        "launch_templates",
    )?;
    let groups: Vec<GroupSource> = rows(
        conn,
        "SELECT row_json FROM auto_scaling_groups WHERE scan_id = ?1 ORDER BY account_id, region, name",
        scan_id,
        "auto_scaling_groups",
    )?;
    let mut stmt = conn.prepare(
        "SELECT account_id, region, http_tokens, http_tokens_enforced, hop_limit, http_endpoint,
            instance_metadata_tags, managed_by
         FROM region_defaults WHERE scan_id = ?1 ORDER BY account_id, region",
    )?;
    let defaults = stmt
        .query_map([scan_id], |r| {
            Ok(DefaultsSource {
                account_id: r.get(0)?,
                region: r.get(1)?,
                defaults: MetadataDefaults {
                    http_tokens: enum_column(r, 2)?,
                    http_tokens_enforced: enum_column(r, 3)?,
                    hop_limit: r.get(4)?,
                    http_endpoint: enum_column(r, 5)?,
                    instance_metadata_tags: enum_column(r, 6)?,
                    managed_by: enum_column(r, 7)?,
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT account_id, region, image_id, instances_allowing_v1
         FROM images WHERE scan_id = ?1 ORDER BY account_id, region, image_id",
    )?;
    let images = stmt
        .query_map([scan_id], |r| {
            Ok(ImageSource {
                account_id: r.get(0)?,
                region: r.get(1)?,
                image_id: r.get(2)?,
                instances_allowing_v1: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sources {
        templates,
        groups,
        defaults,
        images,
    })
}
