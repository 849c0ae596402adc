//! Container-host detection. Containers reach IMDS through one more network
//! hop than the host, so under IMDSv2 a container host needs
//! `HttpPutResponseHopLimit` 2, or the PUT for a token never comes back
//! and the software inside falls back to (refused) v1 calls.

use crate::model::Instance;

/// Why we think `instance` runs containers (EKS, ECS, Kubernetes), if we do.
/// Only evidence present in `DescribeInstances` is used: tags that EKS, ECS,
/// kOps, Karpenter and the cluster autoscaler put on their nodes.
pub fn detect(instance: &Instance) -> Option<String> {
    for key in instance.tags.keys() {
        let hit = key == "eks:cluster-name"
            || key == "eks:nodegroup-name"
            || key.starts_with("aws:eks:")
            || key.starts_with("kubernetes.io/cluster/")
            || key.starts_with("k8s.io/cluster-autoscaler/")
            || key.starts_with("karpenter.sh/")
            || key.starts_with("aws:ecs:")
            || key == "ecs:cluster-name"
            || key == "AmazonECSManaged";
        if hit {
            return Some(format!("tag {key}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::instance;
    use crate::model::HttpTokens;

    #[test]
    fn detects_cluster_tags_only() {
        let mut i = instance(1, HttpTokens::Optional);
        assert_eq!(detect(&i), None);
        i.tags.insert("Name".into(), "eks-looking-name".into());
        assert_eq!(detect(&i), None);
        i.tags
            .insert("kubernetes.io/cluster/prod".into(), "owned".into());
        assert_eq!(
            detect(&i).as_deref(),
            Some("tag kubernetes.io/cluster/prod")
        );
        let mut j = instance(2, HttpTokens::Optional);
        j.tags.insert("aws:ecs:clusterName".into(), "c".into());
        assert!(detect(&j).is_some());
        let mut k = instance(3, HttpTokens::Optional);
        k.tags.insert("eks:cluster-name".into(), "c".into());
        assert!(detect(&k).is_some());
    }
}
