//! The SDK side of `imdsguard trail`'s other sources: CloudTrail
//! `LookupEvents` (per account and region) and Athena.

use async_trait::async_trait;
use aws_config::SdkConfig;

use super::error::Operation;
use super::regional::PerRegion;
use super::sdk_error::convert;
use super::{AthenaApi, AwsError, CloudTrailApi, EventPage, QueryPage, QueryState};

fn time(epoch: i64) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(epoch)
}

/// CloudTrail, one client per region.
pub struct SdkCloudTrail {
    config: SdkConfig,
    clients: PerRegion<aws_sdk_cloudtrail::Client>,
}

impl SdkCloudTrail {
    pub fn new(config: SdkConfig) -> Self {
        SdkCloudTrail {
            config,
            clients: PerRegion::new(),
        }
    }
}

#[async_trait]
impl CloudTrailApi for SdkCloudTrail {
    async fn lookup_events(
        &self,
        region: &str,
        start: i64,
        end: i64,
        token: Option<String>,
    ) -> Result<EventPage, AwsError> {
        let client = self.clients.get(region, |r| {
            aws_sdk_cloudtrail::Client::from_conf(
                aws_sdk_cloudtrail::config::Builder::from(&self.config)
                    .region(r)
                    .build(),
            )
        });
        let out = client
            .lookup_events()
            .start_time(time(start))
            .end_time(time(end))
            .max_results(50)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| convert(Operation::LookupEvents, e))?;
        Ok(EventPage {
            events: out
                .events()
                .iter()
                .filter_map(|e| e.cloud_trail_event().map(str::to_owned))
                .collect(),
            next_token: super::page_token(out.next_token()),
        })
    }
}

/// Athena in one region.
pub struct SdkAthena(pub aws_sdk_athena::Client);

#[async_trait]
impl AthenaApi for SdkAthena {
    async fn start_query(
        &self,
        sql: &str,
        output: &str,
        workgroup: Option<&str>,
    ) -> Result<String, AwsError> {
        let out = self
            .0
            .start_query_execution()
            .query_string(sql)
            .result_configuration(
                aws_sdk_athena::types::ResultConfiguration::builder()
                    .output_location(output)
                    .build(),
            )
            .set_work_group(workgroup.map(str::to_owned))
            .send()
            .await
            .map_err(|e| convert(Operation::StartQueryExecution, e))?;
        Ok(out.query_execution_id().unwrap_or_default().to_owned())
    }

    async fn query_state(&self, id: &str) -> Result<QueryState, AwsError> {
        use aws_sdk_athena::types::QueryExecutionState as S;
        let out = self
            .0
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| convert(Operation::GetQueryExecution, e))?;
        let status = out.query_execution().and_then(|q| q.status());
        Ok(match status.and_then(|s| s.state()) {
            Some(S::Succeeded) => QueryState::Succeeded,
            Some(S::Failed) | Some(S::Cancelled) => QueryState::Failed(
                status
                    .and_then(|s| s.state_change_reason())
                    .unwrap_or("no reason given")
                    .to_owned(),
            ),
            _ => QueryState::Running,
        })
    }

    async fn query_results(&self, id: &str, token: Option<String>) -> Result<QueryPage, AwsError> {
        let out = self
            .0
            .get_query_results()
            .query_execution_id(id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| convert(Operation::GetQueryResults, e))?;
        Ok(QueryPage {
            rows: out
                .result_set()
                .map(|r| r.rows())
                .unwrap_or_default()
                .iter()
                .map(|row| {
                    row.data()
                        .iter()
                        .map(|d| d.var_char_value().map(str::to_owned))
                        .collect()
                })
                .collect(),
            next_token: super::page_token(out.next_token()),
        })
    }
}
