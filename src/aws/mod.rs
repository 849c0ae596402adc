//! Our narrow view of AWS: the few calls the engine makes, behind traits.
//!
//! The engine only ever sees [`Ec2Api`], [`IamApi`] and [`StsApi`], which speak
//! our own `model` types. `sdk` implements them on the official AWS SDK for
//! Rust; tests implement them with in-memory fakes (see `fake`) so paging,
//! call counts and failures can be tested without a network. Each method is
//! one AWS request, so pagination (and therefore the number of calls) is
//! decided by the engine, where it can be tested.

pub mod error;
#[cfg(test)]
pub mod fake;
pub mod sdk;

use async_trait::async_trait;

pub use error::{AwsError, AwsErrorKind};

use crate::model::{Identity, Instance, InstanceProfile, RegionInfo};

/// One server-side `DescribeInstances` filter (`Name` and `Values`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// One page of `DescribeInstances`, flattened out of its reservations.
#[derive(Debug, Clone, Default)]
pub struct InstancePage {
    pub instances: Vec<Instance>,
    pub next_token: Option<String>,
}

/// One page of `ListInstanceProfiles`.
#[derive(Debug, Clone, Default)]
pub struct ProfilePage {
    pub profiles: Vec<InstanceProfile>,
    pub next_marker: Option<String>,
}

/// The EC2 calls we make. Regional: every call names its region.
#[async_trait]
pub trait Ec2Api: Send + Sync {
    /// `DescribeRegions` with `AllRegions=true`, sent to `region`.
    async fn describe_regions(&self, region: &str) -> Result<Vec<RegionInfo>, AwsError>;

    /// One page of `DescribeInstances`.
    async fn describe_instances(
        &self,
        region: &str,
        filters: &[Filter],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<InstancePage, AwsError>;
}

/// The IAM calls we make (IAM is global: one listing serves every region).
#[async_trait]
pub trait IamApi: Send + Sync {
    /// One page of `ListInstanceProfiles`.
    async fn list_instance_profiles(&self, marker: Option<String>)
    -> Result<ProfilePage, AwsError>;
}

/// The STS calls we make.
#[async_trait]
pub trait StsApi: Send + Sync {
    /// `GetCallerIdentity`: which account and principal our credentials are.
    async fn caller_identity(&self) -> Result<Identity, AwsError>;
}

/// Everything the engine needs to talk to one account.
pub struct AccountApis {
    pub ec2: Box<dyn Ec2Api>,
    pub iam: Box<dyn IamApi>,
    pub sts: Box<dyn StsApi>,
    /// The region used for global and discovery calls (`DescribeRegions`).
    pub home_region: String,
}
