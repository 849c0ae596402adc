//! CSV output: one row per instance, every field of the JSON v1 record,
//! with `tags` as a JSON object in one cell and `usage` flattened; and the
//! formula-safe [`Writer`] every CSV output uses.

use std::io::Write;

use crate::output::json::InstanceV1;
use crate::output::sanitize::csv_cell;
use crate::report::ScanReport;

pub const HEADER: &[&str] = &[
    "account_id",
    "region",
    "instance_id",
    "name",
    "state",
    "launch_time",
    "image_id",
    "http_tokens",
    "http_endpoint",
    "hop_limit",
    "instance_metadata_tags",
    "http_protocol_ipv6",
    "metadata_state",
    "allows_v1",
    "instance_profile_arn",
    "role_name",
    "owner",
    "tags",
    "asg_name",
    "cloudformation_stack",
    "launch_template",
    "container_host",
    "usage_window_days",
    "v1_calls",
    "last_v1_call",
    "days_with_data",
    "rejected_calls",
    "readiness",
    "reason",
];

/// A CSV writer whose every cell goes through [`csv_cell`]: every CSV
/// imdsguard writes (scans, plans, runs, usage, query rows) uses it.
pub struct Writer<W: Write>(::csv::Writer<W>);

pub fn writer<W: Write>(out: W) -> Writer<W> {
    Writer(::csv::Writer::from_writer(out))
}

impl<W: Write> Writer<W> {
    pub fn write_record<I, T>(&mut self, record: I) -> ::csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let cells: Vec<String> = record
            .into_iter()
            .map(|f| csv_cell(f.as_ref()).into_owned())
            .collect();
        self.0.write_record(&cells)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

pub fn render(report: &ScanReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = writer(out);
    w.write_record(HEADER)?;
    for rec in &report.instances {
        let v = InstanceV1::new(rec);
        let opt = |s: Option<&str>| s.unwrap_or("").to_owned();
        let usage = v.usage;
        w.write_record([
            v.account_id.to_owned(),
            v.region.to_owned(),
            v.instance_id.to_owned(),
            opt(v.name),
            v.state.to_owned(),
            opt(v.launch_time),
            opt(v.image_id),
            opt(v.http_tokens),
            opt(v.http_endpoint),
            v.hop_limit.map(|h| h.to_string()).unwrap_or_default(),
            opt(v.instance_metadata_tags),
            opt(v.http_protocol_ipv6),
            opt(v.metadata_state),
            v.allows_v1.to_string(),
            opt(v.instance_profile_arn),
            opt(v.role_name),
            opt(v.owner),
            serde_json::to_string(v.tags).expect("tags serialize"),
            opt(v.asg_name),
            opt(v.cloudformation_stack),
            opt(v.launch_template),
            v.container_host.to_string(),
            usage.map(|u| u.window_days.to_string()).unwrap_or_default(),
            usage.map(|u| u.v1_calls.to_string()).unwrap_or_default(),
            usage
                .and_then(|u| u.last_v1_call.clone())
                .unwrap_or_default(),
            usage
                .map(|u| u.days_with_data.to_string())
                .unwrap_or_default(),
            usage
                .map(|u| u.rejected_calls.to_string())
                .unwrap_or_default(),
            v.readiness.to_owned(),
            v.reason.to_owned(),
        ])?;
    }
    w.flush()
}
