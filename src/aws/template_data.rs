//! Launch template data for the versions we create: a copy of an existing
//! version's data, or the equivalent of a legacy launch configuration.
//!
//! `CreateLaunchTemplateVersion` can inherit a version's data through
//! `SourceVersion`, sending only what changes. We do not rely on it: the data
//! EC2 ends up with would then depend on a merge that happens out of sight,
//! which we can neither show in a plan nor test (moto ignores `SourceVersion`
//! and stores only the data sent, so tests against it would pass while
//! proving nothing). Instead every field of the source version is copied
//! explicitly into the request, field by field, and the copy is tested to
//! drop nothing.
//!
//! The SDK has separate response and request types for the same data
//! (`...Specification` against `...SpecificationRequest` and the like),
//! with no conversion between them, hence the long, boring mapping below.
//!
//! User data is copied as is and never printed: the SDK's `Debug` redacts
//! it in these types, but not in Auto Scaling's `LaunchConfiguration`.

use aws_sdk_autoscaling::types as asg;
use aws_sdk_ec2::types as ec2;

// The request built from an existing version's data. Response fields that
// are not copied, because the request has no place for them:
//
// - `LaunchTemplateInstanceMetadataOptions::state`: whether the metadata
//   options are `pending` or `applied`, a status EC2 reports, not a setting.
// - `InstanceIpv6Address::is_primary_ipv6`: the request's
//   `InstanceIpv6AddressRequest` has only the address. The primary IPv6
//   address is requested through the interface's `primary_ipv6`, which is
//   copied.
// - `OperatorResponse::managed` and `hidden_by_default`: EC2 derives both
//   from the operator's principal, the only part of `OperatorRequest`, which
//   is copied.
//
// Every field of the request has a counterpart in the response, so nothing
// in the new version is left unset that the source version had set.
//
// The deprecated Elastic Graphics and Elastic Inference specifications are
// copied too: a source version can only hold them if EC2 accepted them, and
// dropping them silently would make the copy differ from its source.

/// The request data of a new launch template version identical to the
/// version whose data `d` is (as `DescribeLaunchTemplateVersions` returns
/// it), ready to be changed (its metadata options, for us) before it is sent.
pub fn request_from_response(
    d: &ec2::ResponseLaunchTemplateData,
) -> ec2::RequestLaunchTemplateData {
    let builder = ec2::RequestLaunchTemplateData::builder()
        .set_kernel_id(d.kernel_id.clone())
        .set_ebs_optimized(d.ebs_optimized)
        .set_iam_instance_profile(d.iam_instance_profile.as_ref().map(iam_instance_profile))
        .set_block_device_mappings(list(&d.block_device_mappings, block_device_mapping))
        .set_network_interfaces(list(&d.network_interfaces, network_interface))
        .set_image_id(d.image_id.clone())
        .set_instance_type(d.instance_type.clone())
        .set_key_name(d.key_name.clone())
        .set_monitoring(d.monitoring.as_ref().map(|m| {
            ec2::LaunchTemplatesMonitoringRequest::builder()
                .set_enabled(m.enabled)
                .build()
        }))
        .set_placement(d.placement.as_ref().map(placement))
        .set_ram_disk_id(d.ram_disk_id.clone())
        .set_disable_api_termination(d.disable_api_termination)
        .set_instance_initiated_shutdown_behavior(d.instance_initiated_shutdown_behavior.clone())
        .set_user_data(d.user_data.clone())
        .set_tag_specifications(list(&d.tag_specifications, tag_specification))
        .set_security_group_ids(d.security_group_ids.clone())
        .set_security_groups(d.security_groups.clone())
        .set_instance_market_options(d.instance_market_options.as_ref().map(market_options))
        .set_credit_specification(d.credit_specification.as_ref().map(|c| {
            ec2::CreditSpecificationRequest::builder()
                .set_cpu_credits(c.cpu_credits.clone())
                .build()
        }))
        .set_cpu_options(d.cpu_options.as_ref().map(cpu_options))
        .set_capacity_reservation_specification(
            d.capacity_reservation_specification
                .as_ref()
                .map(capacity_reservation),
        )
        .set_license_specifications(list(&d.license_specifications, |l| {
            ec2::LaunchTemplateLicenseConfigurationRequest::builder()
                .set_license_configuration_arn(l.license_configuration_arn.clone())
                .build()
        }))
        .set_hibernation_options(d.hibernation_options.as_ref().map(|h| {
            ec2::LaunchTemplateHibernationOptionsRequest::builder()
                .set_configured(h.configured)
                .build()
        }))
        .set_metadata_options(d.metadata_options.as_ref().map(metadata_options))
        .set_enclave_options(d.enclave_options.as_ref().map(|e| {
            ec2::LaunchTemplateEnclaveOptionsRequest::builder()
                .set_enabled(e.enabled)
                .build()
        }))
        .set_instance_requirements(d.instance_requirements.as_ref().map(instance_requirements))
        .set_private_dns_name_options(d.private_dns_name_options.as_ref().map(private_dns))
        .set_maintenance_options(d.maintenance_options.as_ref().map(|m| {
            ec2::LaunchTemplateInstanceMaintenanceOptionsRequest::builder()
                .set_auto_recovery(m.auto_recovery.clone())
                .build()
        }))
        .set_disable_api_stop(d.disable_api_stop)
        .set_operator(d.operator.as_ref().map(|o| {
            ec2::OperatorRequest::builder()
                .set_principal(o.principal.clone())
                .build()
        }))
        .set_network_performance_options(d.network_performance_options.as_ref().map(|n| {
            ec2::LaunchTemplateNetworkPerformanceOptionsRequest::builder()
                .set_bandwidth_weighting(n.bandwidth_weighting.clone())
                .build()
        }))
        .set_secondary_interfaces(list(&d.secondary_interfaces, secondary_interface));
    // Deprecated in the request (both services reached end of life), copied
    // all the same: see the note above.
    #[allow(deprecated)]
    let builder = builder
        .set_elastic_gpu_specifications(list(&d.elastic_gpu_specifications, |g| {
            ec2::ElasticGpuSpecification::builder()
                .set_type(g.r#type.clone())
                .build()
        }))
        .set_elastic_inference_accelerators(list(&d.elastic_inference_accelerators, |a| {
            ec2::LaunchTemplateElasticInferenceAccelerator::builder()
                .set_type(a.r#type.clone())
                .set_count(a.count)
                .build()
        }));
    builder.build()
}

/// Each item of an optional list converted, keeping "absent" apart from
/// "empty" (EC2 keeps them apart too).
fn list<T, U>(items: &Option<Vec<T>>, convert: impl Fn(&T) -> U) -> Option<Vec<U>> {
    items.as_ref().map(|v| v.iter().map(convert).collect())
}

fn iam_instance_profile(
    p: &ec2::LaunchTemplateIamInstanceProfileSpecification,
) -> ec2::LaunchTemplateIamInstanceProfileSpecificationRequest {
    ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
        .set_arn(p.arn.clone())
        .set_name(p.name.clone())
        .build()
}

fn block_device_mapping(
    m: &ec2::LaunchTemplateBlockDeviceMapping,
) -> ec2::LaunchTemplateBlockDeviceMappingRequest {
    ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
        .set_device_name(m.device_name.clone())
        .set_virtual_name(m.virtual_name.clone())
        .set_ebs(m.ebs.as_ref().map(|e| {
            ec2::LaunchTemplateEbsBlockDeviceRequest::builder()
                .set_encrypted(e.encrypted)
                .set_delete_on_termination(e.delete_on_termination)
                .set_iops(e.iops)
                .set_kms_key_id(e.kms_key_id.clone())
                .set_snapshot_id(e.snapshot_id.clone())
                .set_volume_size(e.volume_size)
                .set_volume_type(e.volume_type.clone())
                .set_throughput(e.throughput)
                .set_volume_initialization_rate(e.volume_initialization_rate)
                .set_ebs_card_index(e.ebs_card_index)
                .build()
        }))
        .set_no_device(m.no_device.clone())
        .build()
}

fn network_interface(
    n: &ec2::LaunchTemplateInstanceNetworkInterfaceSpecification,
) -> ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest {
    ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
        .set_associate_carrier_ip_address(n.associate_carrier_ip_address)
        .set_associate_public_ip_address(n.associate_public_ip_address)
        .set_delete_on_termination(n.delete_on_termination)
        .set_description(n.description.clone())
        .set_device_index(n.device_index)
        .set_groups(n.groups.clone())
        .set_interface_type(n.interface_type.clone())
        .set_ipv6_address_count(n.ipv6_address_count)
        // `is_primary_ipv6` has no place here: see `primary_ipv6` below.
        .set_ipv6_addresses(list(&n.ipv6_addresses, |a| {
            ec2::InstanceIpv6AddressRequest::builder()
                .set_ipv6_address(a.ipv6_address.clone())
                .build()
        }))
        .set_network_interface_id(n.network_interface_id.clone())
        .set_private_ip_address(n.private_ip_address.clone())
        // The same type in the response and the request.
        .set_private_ip_addresses(n.private_ip_addresses.clone())
        .set_secondary_private_ip_address_count(n.secondary_private_ip_address_count)
        .set_subnet_id(n.subnet_id.clone())
        .set_network_card_index(n.network_card_index)
        .set_ipv4_prefixes(list(&n.ipv4_prefixes, |p| {
            ec2::Ipv4PrefixSpecificationRequest::builder()
                .set_ipv4_prefix(p.ipv4_prefix.clone())
                .build()
        }))
        .set_ipv4_prefix_count(n.ipv4_prefix_count)
        .set_ipv6_prefixes(list(&n.ipv6_prefixes, |p| {
            ec2::Ipv6PrefixSpecificationRequest::builder()
                .set_ipv6_prefix(p.ipv6_prefix.clone())
                .build()
        }))
        .set_ipv6_prefix_count(n.ipv6_prefix_count)
        .set_primary_ipv6(n.primary_ipv6)
        .set_ena_srd_specification(n.ena_srd_specification.as_ref().map(|s| {
            ec2::EnaSrdSpecificationRequest::builder()
                .set_ena_srd_enabled(s.ena_srd_enabled)
                .set_ena_srd_udp_specification(s.ena_srd_udp_specification.as_ref().map(|u| {
                    ec2::EnaSrdUdpSpecificationRequest::builder()
                        .set_ena_srd_udp_enabled(u.ena_srd_udp_enabled)
                        .build()
                }))
                .build()
        }))
        .set_connection_tracking_specification(n.connection_tracking_specification.as_ref().map(
            |c| {
                ec2::ConnectionTrackingSpecificationRequest::builder()
                    .set_tcp_established_timeout(c.tcp_established_timeout)
                    .set_udp_stream_timeout(c.udp_stream_timeout)
                    .set_udp_timeout(c.udp_timeout)
                    .build()
            },
        ))
        .set_ena_queue_count(n.ena_queue_count)
        .build()
}

fn placement(p: &ec2::LaunchTemplatePlacement) -> ec2::LaunchTemplatePlacementRequest {
    ec2::LaunchTemplatePlacementRequest::builder()
        .set_availability_zone(p.availability_zone.clone())
        .set_availability_zone_id(p.availability_zone_id.clone())
        .set_affinity(p.affinity.clone())
        .set_group_name(p.group_name.clone())
        .set_host_id(p.host_id.clone())
        .set_tenancy(p.tenancy.clone())
        .set_spread_domain(p.spread_domain.clone())
        .set_host_resource_group_arn(p.host_resource_group_arn.clone())
        .set_partition_number(p.partition_number)
        .set_group_id(p.group_id.clone())
        .build()
}

fn tag_specification(
    t: &ec2::LaunchTemplateTagSpecification,
) -> ec2::LaunchTemplateTagSpecificationRequest {
    ec2::LaunchTemplateTagSpecificationRequest::builder()
        .set_resource_type(t.resource_type.clone())
        // `Tag` is the same type in the response and the request.
        .set_tags(t.tags.clone())
        .build()
}

fn market_options(
    m: &ec2::LaunchTemplateInstanceMarketOptions,
) -> ec2::LaunchTemplateInstanceMarketOptionsRequest {
    ec2::LaunchTemplateInstanceMarketOptionsRequest::builder()
        .set_market_type(m.market_type.clone())
        .set_spot_options(m.spot_options.as_ref().map(|s| {
            ec2::LaunchTemplateSpotMarketOptionsRequest::builder()
                .set_max_price(s.max_price.clone())
                .set_spot_instance_type(s.spot_instance_type.clone())
                .set_block_duration_minutes(s.block_duration_minutes)
                .set_valid_until(s.valid_until)
                .set_instance_interruption_behavior(s.instance_interruption_behavior.clone())
                .build()
        }))
        .build()
}

fn cpu_options(c: &ec2::LaunchTemplateCpuOptions) -> ec2::LaunchTemplateCpuOptionsRequest {
    ec2::LaunchTemplateCpuOptionsRequest::builder()
        .set_core_count(c.core_count)
        .set_threads_per_core(c.threads_per_core)
        .set_amd_sev_snp(c.amd_sev_snp.clone())
        .set_nested_virtualization(c.nested_virtualization.clone())
        .build()
}

fn capacity_reservation(
    c: &ec2::LaunchTemplateCapacityReservationSpecificationResponse,
) -> ec2::LaunchTemplateCapacityReservationSpecificationRequest {
    ec2::LaunchTemplateCapacityReservationSpecificationRequest::builder()
        .set_capacity_reservation_preference(c.capacity_reservation_preference.clone())
        .set_capacity_reservation_target(c.capacity_reservation_target.as_ref().map(|t| {
            ec2::CapacityReservationTarget::builder()
                .set_capacity_reservation_id(t.capacity_reservation_id.clone())
                .set_capacity_reservation_resource_group_arn(
                    t.capacity_reservation_resource_group_arn.clone(),
                )
                .build()
        }))
        .build()
}

fn metadata_options(
    m: &ec2::LaunchTemplateInstanceMetadataOptions,
) -> ec2::LaunchTemplateInstanceMetadataOptionsRequest {
    // `state` (pending or applied) is a status, not a setting: not copied.
    ec2::LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .set_http_tokens(m.http_tokens.clone())
        .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
        .set_http_endpoint(m.http_endpoint.clone())
        .set_http_protocol_ipv6(m.http_protocol_ipv6.clone())
        .set_instance_metadata_tags(m.instance_metadata_tags.clone())
        .build()
}

fn instance_requirements(r: &ec2::InstanceRequirements) -> ec2::InstanceRequirementsRequest {
    ec2::InstanceRequirementsRequest::builder()
        .set_v_cpu_count(r.v_cpu_count.as_ref().map(|x| {
            ec2::VCpuCountRangeRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_memory_mib(r.memory_mib.as_ref().map(|x| {
            ec2::MemoryMiBRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_cpu_manufacturers(r.cpu_manufacturers.clone())
        .set_memory_gib_per_v_cpu(r.memory_gib_per_v_cpu.as_ref().map(|x| {
            ec2::MemoryGiBPerVCpuRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_excluded_instance_types(r.excluded_instance_types.clone())
        .set_instance_generations(r.instance_generations.clone())
        .set_spot_max_price_percentage_over_lowest_price(
            r.spot_max_price_percentage_over_lowest_price,
        )
        .set_on_demand_max_price_percentage_over_lowest_price(
            r.on_demand_max_price_percentage_over_lowest_price,
        )
        .set_bare_metal(r.bare_metal.clone())
        .set_burstable_performance(r.burstable_performance.clone())
        .set_require_hibernate_support(r.require_hibernate_support)
        .set_network_interface_count(r.network_interface_count.as_ref().map(|x| {
            ec2::NetworkInterfaceCountRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_local_storage(r.local_storage.clone())
        .set_local_storage_types(r.local_storage_types.clone())
        .set_total_local_storage_gb(r.total_local_storage_gb.as_ref().map(|x| {
            ec2::TotalLocalStorageGbRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_baseline_ebs_bandwidth_mbps(r.baseline_ebs_bandwidth_mbps.as_ref().map(|x| {
            ec2::BaselineEbsBandwidthMbpsRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_accelerator_types(r.accelerator_types.clone())
        .set_accelerator_count(r.accelerator_count.as_ref().map(|x| {
            ec2::AcceleratorCountRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_accelerator_manufacturers(r.accelerator_manufacturers.clone())
        .set_accelerator_names(r.accelerator_names.clone())
        .set_accelerator_total_memory_mib(r.accelerator_total_memory_mib.as_ref().map(|x| {
            ec2::AcceleratorTotalMemoryMiBRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_network_bandwidth_gbps(r.network_bandwidth_gbps.as_ref().map(|x| {
            ec2::NetworkBandwidthGbpsRequest::builder()
                .set_min(x.min)
                .set_max(x.max)
                .build()
        }))
        .set_allowed_instance_types(r.allowed_instance_types.clone())
        .set_max_spot_price_as_percentage_of_optimal_on_demand_price(
            r.max_spot_price_as_percentage_of_optimal_on_demand_price,
        )
        .set_baseline_performance_factors(r.baseline_performance_factors.as_ref().map(|b| {
            ec2::BaselinePerformanceFactorsRequest::builder()
                .set_cpu(b.cpu.as_ref().map(|c| {
                    ec2::CpuPerformanceFactorRequest::builder()
                        .set_references(list(&c.references, |f| {
                            ec2::PerformanceFactorReferenceRequest::builder()
                                .set_instance_family(f.instance_family.clone())
                                .build()
                        }))
                        .build()
                }))
                .build()
        }))
        .set_require_encryption_in_transit(r.require_encryption_in_transit)
        .build()
}

fn private_dns(
    p: &ec2::LaunchTemplatePrivateDnsNameOptions,
) -> ec2::LaunchTemplatePrivateDnsNameOptionsRequest {
    ec2::LaunchTemplatePrivateDnsNameOptionsRequest::builder()
        .set_hostname_type(p.hostname_type.clone())
        .set_enable_resource_name_dns_a_record(p.enable_resource_name_dns_a_record)
        .set_enable_resource_name_dns_aaaa_record(p.enable_resource_name_dns_aaaa_record)
        .build()
}

fn secondary_interface(
    s: &ec2::LaunchTemplateInstanceSecondaryInterfaceSpecification,
) -> ec2::LaunchTemplateInstanceSecondaryInterfaceSpecificationRequest {
    ec2::LaunchTemplateInstanceSecondaryInterfaceSpecificationRequest::builder()
        .set_delete_on_termination(s.delete_on_termination)
        .set_device_index(s.device_index)
        .set_private_ip_addresses(list(&s.private_ip_addresses, |a| {
            ec2::SecondaryInterfacePrivateIpAddressSpecificationRequest::builder()
                .set_private_ip_address(a.private_ip_address.clone())
                .build()
        }))
        .set_private_ip_address_count(s.private_ip_address_count)
        .set_secondary_subnet_id(s.secondary_subnet_id.clone())
        .set_interface_type(s.interface_type.clone())
        .set_network_card_index(s.network_card_index)
        .build()
}

// The launch template equivalent of a launch configuration, after AWS's
// mapping ("Migrate AWS CloudFormation stacks from launch configurations to
// launch templates", "Launch configuration mapping reference"). Launch
// configuration fields with no launch template counterpart:
//
// - `launch_configuration_name`, `launch_configuration_arn`, `created_time`:
//   describe the launch configuration itself, not the instances it launches
//   (the caller names the template).
// - `classic_link_vpc_id`, `classic_link_vpc_security_groups`: EC2-Classic
//   ClassicLink, retired; launch templates have no place for them.
//
// Launch template fields a launch configuration cannot supply (its block
// devices have no KMS key id, its metadata options no IPv6 endpoint or tags
// setting, and so on) are left unset, as they were for the group's instances.

/// The launch template data that launches the instances `lc` launches.
/// Metadata options are copied as they are: the caller overrides them.
pub fn request_from_launch_configuration(
    lc: &asg::LaunchConfiguration,
) -> ec2::RequestLaunchTemplateData {
    // Launch configurations take security group ids and (EC2-Classic and
    // default VPC) names in one list; launch templates keep them apart.
    let (ids, names): (Vec<String>, Vec<String>) = lc
        .security_groups
        .iter()
        .flatten()
        .filter(|g| !g.is_empty())
        .cloned()
        .partition(|g| g.starts_with("sg-"));
    let ids = Some(ids).filter(|v| !v.is_empty());
    let names = Some(names).filter(|v| !v.is_empty());

    let mut builder = ec2::RequestLaunchTemplateData::builder()
        .set_image_id(non_empty(&lc.image_id))
        .set_instance_type(
            non_empty(&lc.instance_type).map(|t| ec2::InstanceType::from(t.as_str())),
        )
        .set_key_name(non_empty(&lc.key_name))
        // Base64 in both APIs: copied as is.
        .set_user_data(non_empty(&lc.user_data))
        .set_kernel_id(non_empty(&lc.kernel_id))
        .set_ram_disk_id(non_empty(&lc.ramdisk_id))
        .set_ebs_optimized(lc.ebs_optimized)
        .set_iam_instance_profile(non_empty(&lc.iam_instance_profile).map(|p| {
            // A launch configuration takes the profile's name or its ARN in
            // one field; a launch template has one field for each.
            let b = ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
            if p.starts_with("arn:") {
                b.arn(p).build()
            } else {
                b.name(p).build()
            }
        }))
        .set_block_device_mappings(list(&lc.block_device_mappings, lc_block_device_mapping))
        .set_monitoring(lc.instance_monitoring.as_ref().map(|m| {
            ec2::LaunchTemplatesMonitoringRequest::builder()
                .set_enabled(m.enabled)
                .build()
        }))
        // Kept although AWS's guide suggests dropping `SpotPrice` on
        // migration: without it the group would launch On-Demand instances
        // instead of Spot ones, a change of cost and of interruption
        // behaviour that is not ours to make.
        .set_instance_market_options(non_empty(&lc.spot_price).map(|price| {
            ec2::LaunchTemplateInstanceMarketOptionsRequest::builder()
                .market_type(ec2::MarketType::Spot)
                .spot_options(
                    ec2::LaunchTemplateSpotMarketOptionsRequest::builder()
                        .max_price(price)
                        .build(),
                )
                .build()
        }))
        .set_placement(non_empty(&lc.placement_tenancy).map(|t| {
            ec2::LaunchTemplatePlacementRequest::builder()
                .tenancy(ec2::Tenancy::from(t.as_str()))
                .build()
        }))
        .set_metadata_options(lc.metadata_options.as_ref().map(lc_metadata_options));

    builder = match lc.associate_public_ip_address {
        // `AssociatePublicIpAddress` (true or false: either overrides the
        // subnet's `MapPublicIpOnLaunch`) only exists on a network
        // interface. EC2 refuses instance-level security groups next to a
        // network interface, so the group ids move into the interface.
        Some(public) => builder
            .network_interfaces(
                ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(public)
                    .set_groups(ids)
                    // What the launch configuration's own interface did: it
                    // was created with the instance and went with it.
                    .delete_on_termination(true)
                    .build(),
            )
            // An interface takes ids only, so names (only ever valid in
            // EC2-Classic and default VPCs) have no faithful place here.
            // They stay at the instance level rather than vanish: EC2 then
            // refuses the combination loudly instead of launching instances
            // without their security groups.
            .set_security_groups(names),
        None => builder
            .set_security_group_ids(ids)
            .set_security_groups(names),
    };
    builder.build()
}

/// `DescribeLaunchConfigurations` reports settings that were never given as
/// empty strings (`KernelId`, `RamdiskId` and `KeyName` notably); in a launch
/// template an empty id is an invalid one, so those read as absent.
fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}

fn lc_block_device_mapping(
    m: &asg::BlockDeviceMapping,
) -> ec2::LaunchTemplateBlockDeviceMappingRequest {
    ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
        .set_device_name(m.device_name.clone())
        .set_virtual_name(m.virtual_name.clone())
        .set_ebs(m.ebs.as_ref().map(|e| {
            ec2::LaunchTemplateEbsBlockDeviceRequest::builder()
                .set_snapshot_id(e.snapshot_id.clone())
                .set_volume_size(e.volume_size)
                .set_volume_type(e.volume_type.as_deref().map(ec2::VolumeType::from))
                .set_delete_on_termination(e.delete_on_termination)
                .set_iops(e.iops)
                .set_encrypted(e.encrypted)
                .set_throughput(e.throughput)
                .build()
        }))
        // A launch configuration suppresses a device with `NoDevice: true`;
        // a launch template with `NoDevice: ""` (any string, in fact, but the
        // empty one is what AWS documents). `false` means nothing: no field.
        .set_no_device(match m.no_device {
            Some(true) => Some(String::new()),
            Some(false) | None => None,
        })
        .build()
}

fn lc_metadata_options(
    m: &asg::InstanceMetadataOptions,
) -> ec2::LaunchTemplateInstanceMetadataOptionsRequest {
    // Through the wire names, so values newer than this SDK survive as well.
    ec2::LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .set_http_tokens(
            m.http_tokens
                .as_ref()
                .map(|t| ec2::LaunchTemplateHttpTokensState::from(t.as_str())),
        )
        .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
        .set_http_endpoint(
            m.http_endpoint
                .as_ref()
                .map(|e| ec2::LaunchTemplateInstanceMetadataEndpointState::from(e.as_str())),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use aws_sdk_autoscaling::types as asg;
    use aws_sdk_ec2::primitives::DateTime;
    use aws_sdk_ec2::types as ec2;

    use super::{request_from_launch_configuration, request_from_response};

    /// A source version with every field of every nested type set, each to
    /// its own value (so a value copied into the wrong field shows too).
    fn full_response() -> ec2::ResponseLaunchTemplateData {
        ec2::ResponseLaunchTemplateData::builder()
            .kernel_id("aki-1")
            .ebs_optimized(true)
            .iam_instance_profile(
                ec2::LaunchTemplateIamInstanceProfileSpecification::builder()
                    .arn("arn:aws:iam::111122223333:instance-profile/web")
                    .name("web")
                    .build(),
            )
            .block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .virtual_name("ephemeral0")
                    .ebs(
                        ec2::LaunchTemplateEbsBlockDevice::builder()
                            .encrypted(true)
                            .delete_on_termination(false)
                            .iops(3001)
                            .kms_key_id("kms-1")
                            .snapshot_id("snap-1")
                            .volume_size(42)
                            .volume_type(ec2::VolumeType::Gp3)
                            .throughput(126)
                            .volume_initialization_rate(301)
                            .ebs_card_index(1)
                            .build(),
                    )
                    .no_device("nodev")
                    .build(),
            )
            .network_interfaces(
                ec2::LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                    .associate_carrier_ip_address(true)
                    .associate_public_ip_address(false)
                    .delete_on_termination(true)
                    .description("primary")
                    .device_index(2)
                    .groups("sg-ni")
                    .interface_type("efa")
                    .ipv6_address_count(3)
                    .ipv6_addresses(
                        ec2::InstanceIpv6Address::builder()
                            .ipv6_address("2001:db8::1")
                            .is_primary_ipv6(true)
                            .build(),
                    )
                    .network_interface_id("eni-1")
                    .private_ip_address("10.0.0.4")
                    .private_ip_addresses(
                        ec2::PrivateIpAddressSpecification::builder()
                            .primary(false)
                            .private_ip_address("10.0.0.5")
                            .build(),
                    )
                    .secondary_private_ip_address_count(4)
                    .subnet_id("subnet-1")
                    .network_card_index(5)
                    .ipv4_prefixes(
                        ec2::Ipv4PrefixSpecificationResponse::builder()
                            .ipv4_prefix("10.0.1.0/28")
                            .build(),
                    )
                    .ipv4_prefix_count(6)
                    .ipv6_prefixes(
                        ec2::Ipv6PrefixSpecificationResponse::builder()
                            .ipv6_prefix("2001:db8:1::/80")
                            .build(),
                    )
                    .ipv6_prefix_count(7)
                    .primary_ipv6(true)
                    .ena_srd_specification(
                        ec2::LaunchTemplateEnaSrdSpecification::builder()
                            .ena_srd_enabled(true)
                            .ena_srd_udp_specification(
                                ec2::LaunchTemplateEnaSrdUdpSpecification::builder()
                                    .ena_srd_udp_enabled(false)
                                    .build(),
                            )
                            .build(),
                    )
                    .connection_tracking_specification(
                        ec2::ConnectionTrackingSpecification::builder()
                            .tcp_established_timeout(432001)
                            .udp_timeout(31)
                            .udp_stream_timeout(181)
                            .build(),
                    )
                    .ena_queue_count(8)
                    .build(),
            )
            .image_id("ami-1")
            .instance_type(ec2::InstanceType::M5Large)
            .key_name("key-1")
            .monitoring(
                ec2::LaunchTemplatesMonitoring::builder()
                    .enabled(true)
                    .build(),
            )
            .placement(
                ec2::LaunchTemplatePlacement::builder()
                    .availability_zone("eu-west-1a")
                    .availability_zone_id("euw1-az1")
                    .affinity("host")
                    .group_name("pg-name")
                    .host_id("h-1")
                    .tenancy(ec2::Tenancy::Dedicated)
                    .spread_domain("spread")
                    .host_resource_group_arn("arn:aws:resource-groups::hrg")
                    .partition_number(3)
                    .group_id("pg-1")
                    .build(),
            )
            .ram_disk_id("ari-1")
            .disable_api_termination(true)
            .instance_initiated_shutdown_behavior(ec2::ShutdownBehavior::Terminate)
            .user_data("IyEvYmluL3NoCmVjaG8gaGk=")
            .tag_specifications(
                ec2::LaunchTemplateTagSpecification::builder()
                    .resource_type(ec2::ResourceType::Volume)
                    .tags(ec2::Tag::builder().key("team").value("web").build())
                    .build(),
            )
            .elastic_gpu_specifications(
                ec2::ElasticGpuSpecificationResponse::builder()
                    .r#type("eg1.medium")
                    .build(),
            )
            .elastic_inference_accelerators(
                ec2::LaunchTemplateElasticInferenceAcceleratorResponse::builder()
                    .r#type("eia1.medium")
                    .count(2)
                    .build(),
            )
            .security_group_ids("sg-top")
            .security_groups("web-sg")
            .instance_market_options(
                ec2::LaunchTemplateInstanceMarketOptions::builder()
                    .market_type(ec2::MarketType::Spot)
                    .spot_options(
                        ec2::LaunchTemplateSpotMarketOptions::builder()
                            .max_price("0.05")
                            .spot_instance_type(ec2::SpotInstanceType::Persistent)
                            .block_duration_minutes(60)
                            .valid_until(DateTime::from_secs(1_900_000_000))
                            .instance_interruption_behavior(
                                ec2::InstanceInterruptionBehavior::Hibernate,
                            )
                            .build(),
                    )
                    .build(),
            )
            .credit_specification(
                ec2::CreditSpecification::builder()
                    .cpu_credits("unlimited")
                    .build(),
            )
            .cpu_options(
                ec2::LaunchTemplateCpuOptions::builder()
                    .core_count(4)
                    .threads_per_core(1)
                    .amd_sev_snp(ec2::AmdSevSnpSpecification::Enabled)
                    .nested_virtualization(ec2::NestedVirtualizationSpecification::Enabled)
                    .build(),
            )
            .capacity_reservation_specification(
                ec2::LaunchTemplateCapacityReservationSpecificationResponse::builder()
                    .capacity_reservation_preference(
                        ec2::CapacityReservationPreference::CapacityReservationsOnly,
                    )
                    .capacity_reservation_target(
                        ec2::CapacityReservationTargetResponse::builder()
                            .capacity_reservation_id("cr-1")
                            .capacity_reservation_resource_group_arn("arn:aws:resource-groups::cr")
                            .build(),
                    )
                    .build(),
            )
            .license_specifications(
                ec2::LaunchTemplateLicenseConfiguration::builder()
                    .license_configuration_arn("arn:aws:license-manager::lic")
                    .build(),
            )
            .hibernation_options(
                ec2::LaunchTemplateHibernationOptions::builder()
                    .configured(true)
                    .build(),
            )
            .metadata_options(
                ec2::LaunchTemplateInstanceMetadataOptions::builder()
                    .state(ec2::LaunchTemplateInstanceMetadataOptionsState::Applied)
                    .http_tokens(ec2::LaunchTemplateHttpTokensState::Optional)
                    .http_put_response_hop_limit(3)
                    .http_endpoint(ec2::LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    .http_protocol_ipv6(ec2::LaunchTemplateInstanceMetadataProtocolIpv6::Enabled)
                    .instance_metadata_tags(ec2::LaunchTemplateInstanceMetadataTagsState::Disabled)
                    .build(),
            )
            .enclave_options(
                ec2::LaunchTemplateEnclaveOptions::builder()
                    .enabled(false)
                    .build(),
            )
            .instance_requirements(
                ec2::InstanceRequirements::builder()
                    .v_cpu_count(ec2::VCpuCountRange::builder().min(2).max(8).build())
                    .memory_mib(ec2::MemoryMiB::builder().min(4096).max(16384).build())
                    .cpu_manufacturers(ec2::CpuManufacturer::Intel)
                    .memory_gib_per_v_cpu(
                        ec2::MemoryGiBPerVCpu::builder().min(1.5).max(4.5).build(),
                    )
                    .excluded_instance_types("t2.*")
                    .instance_generations(ec2::InstanceGeneration::Current)
                    .spot_max_price_percentage_over_lowest_price(55)
                    .on_demand_max_price_percentage_over_lowest_price(25)
                    .bare_metal(ec2::BareMetal::Excluded)
                    .burstable_performance(ec2::BurstablePerformance::Included)
                    .require_hibernate_support(true)
                    .network_interface_count(
                        ec2::NetworkInterfaceCount::builder().min(1).max(3).build(),
                    )
                    .local_storage(ec2::LocalStorage::Required)
                    .local_storage_types(ec2::LocalStorageType::Ssd)
                    .total_local_storage_gb(
                        ec2::TotalLocalStorageGb::builder()
                            .min(10.5)
                            .max(100.5)
                            .build(),
                    )
                    .baseline_ebs_bandwidth_mbps(
                        ec2::BaselineEbsBandwidthMbps::builder()
                            .min(100)
                            .max(1000)
                            .build(),
                    )
                    .accelerator_types(ec2::AcceleratorType::Gpu)
                    .accelerator_count(ec2::AcceleratorCount::builder().min(0).max(2).build())
                    .accelerator_manufacturers(ec2::AcceleratorManufacturer::Nvidia)
                    .accelerator_names(ec2::AcceleratorName::A100)
                    .accelerator_total_memory_mib(
                        ec2::AcceleratorTotalMemoryMiB::builder()
                            .min(1024)
                            .max(8192)
                            .build(),
                    )
                    .network_bandwidth_gbps(
                        ec2::NetworkBandwidthGbps::builder()
                            .min(0.5)
                            .max(25.0)
                            .build(),
                    )
                    .allowed_instance_types("m5.*")
                    .max_spot_price_as_percentage_of_optimal_on_demand_price(70)
                    .baseline_performance_factors(
                        ec2::BaselinePerformanceFactors::builder()
                            .cpu(
                                ec2::CpuPerformanceFactor::builder()
                                    .references(
                                        ec2::PerformanceFactorReference::builder()
                                            .instance_family("c6i")
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .require_encryption_in_transit(true)
                    .build(),
            )
            .private_dns_name_options(
                ec2::LaunchTemplatePrivateDnsNameOptions::builder()
                    .hostname_type(ec2::HostnameType::ResourceName)
                    .enable_resource_name_dns_a_record(true)
                    .enable_resource_name_dns_aaaa_record(false)
                    .build(),
            )
            .maintenance_options(
                ec2::LaunchTemplateInstanceMaintenanceOptions::builder()
                    .auto_recovery(ec2::LaunchTemplateAutoRecoveryState::Disabled)
                    .build(),
            )
            .disable_api_stop(false)
            .operator(
                ec2::OperatorResponse::builder()
                    .managed(true)
                    .principal("eks.amazonaws.com")
                    .hidden_by_default(true)
                    .build(),
            )
            .network_performance_options(
                ec2::LaunchTemplateNetworkPerformanceOptions::builder()
                    .bandwidth_weighting(ec2::InstanceBandwidthWeighting::Vpc1)
                    .build(),
            )
            .secondary_interfaces(
                ec2::LaunchTemplateInstanceSecondaryInterfaceSpecification::builder()
                    .delete_on_termination(false)
                    .device_index(1)
                    .private_ip_addresses(
                        ec2::SecondaryInterfacePrivateIpAddressSpecification::builder()
                            .private_ip_address("10.1.0.9")
                            .build(),
                    )
                    .private_ip_address_count(2)
                    .secondary_subnet_id("subnet-2")
                    .interface_type(ec2::SecondaryInterfaceType::Secondary)
                    .network_card_index(1)
                    .build(),
            )
            .build()
    }

    /// What `full_response` must become, written out field by field.
    fn full_request() -> ec2::RequestLaunchTemplateData {
        let builder = ec2::RequestLaunchTemplateData::builder()
            .kernel_id("aki-1")
            .ebs_optimized(true)
            .iam_instance_profile(
                ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .arn("arn:aws:iam::111122223333:instance-profile/web")
                    .name("web")
                    .build(),
            )
            .block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name("/dev/xvda")
                    .virtual_name("ephemeral0")
                    .ebs(
                        ec2::LaunchTemplateEbsBlockDeviceRequest::builder()
                            .encrypted(true)
                            .delete_on_termination(false)
                            .iops(3001)
                            .kms_key_id("kms-1")
                            .snapshot_id("snap-1")
                            .volume_size(42)
                            .volume_type(ec2::VolumeType::Gp3)
                            .throughput(126)
                            .volume_initialization_rate(301)
                            .ebs_card_index(1)
                            .build(),
                    )
                    .no_device("nodev")
                    .build(),
            )
            .network_interfaces(
                ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .associate_carrier_ip_address(true)
                    .associate_public_ip_address(false)
                    .delete_on_termination(true)
                    .description("primary")
                    .device_index(2)
                    .groups("sg-ni")
                    .interface_type("efa")
                    .ipv6_address_count(3)
                    .ipv6_addresses(
                        ec2::InstanceIpv6AddressRequest::builder()
                            .ipv6_address("2001:db8::1")
                            .build(),
                    )
                    .network_interface_id("eni-1")
                    .private_ip_address("10.0.0.4")
                    .private_ip_addresses(
                        ec2::PrivateIpAddressSpecification::builder()
                            .primary(false)
                            .private_ip_address("10.0.0.5")
                            .build(),
                    )
                    .secondary_private_ip_address_count(4)
                    .subnet_id("subnet-1")
                    .network_card_index(5)
                    .ipv4_prefixes(
                        ec2::Ipv4PrefixSpecificationRequest::builder()
                            .ipv4_prefix("10.0.1.0/28")
                            .build(),
                    )
                    .ipv4_prefix_count(6)
                    .ipv6_prefixes(
                        ec2::Ipv6PrefixSpecificationRequest::builder()
                            .ipv6_prefix("2001:db8:1::/80")
                            .build(),
                    )
                    .ipv6_prefix_count(7)
                    .primary_ipv6(true)
                    .ena_srd_specification(
                        ec2::EnaSrdSpecificationRequest::builder()
                            .ena_srd_enabled(true)
                            .ena_srd_udp_specification(
                                ec2::EnaSrdUdpSpecificationRequest::builder()
                                    .ena_srd_udp_enabled(false)
                                    .build(),
                            )
                            .build(),
                    )
                    .connection_tracking_specification(
                        ec2::ConnectionTrackingSpecificationRequest::builder()
                            .tcp_established_timeout(432001)
                            .udp_timeout(31)
                            .udp_stream_timeout(181)
                            .build(),
                    )
                    .ena_queue_count(8)
                    .build(),
            )
            .image_id("ami-1")
            .instance_type(ec2::InstanceType::M5Large)
            .key_name("key-1")
            .monitoring(
                ec2::LaunchTemplatesMonitoringRequest::builder()
                    .enabled(true)
                    .build(),
            )
            .placement(
                ec2::LaunchTemplatePlacementRequest::builder()
                    .availability_zone("eu-west-1a")
                    .availability_zone_id("euw1-az1")
                    .affinity("host")
                    .group_name("pg-name")
                    .host_id("h-1")
                    .tenancy(ec2::Tenancy::Dedicated)
                    .spread_domain("spread")
                    .host_resource_group_arn("arn:aws:resource-groups::hrg")
                    .partition_number(3)
                    .group_id("pg-1")
                    .build(),
            )
            .ram_disk_id("ari-1")
            .disable_api_termination(true)
            .instance_initiated_shutdown_behavior(ec2::ShutdownBehavior::Terminate)
            .user_data("IyEvYmluL3NoCmVjaG8gaGk=")
            .tag_specifications(
                ec2::LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ec2::ResourceType::Volume)
                    .tags(ec2::Tag::builder().key("team").value("web").build())
                    .build(),
            )
            .security_group_ids("sg-top")
            .security_groups("web-sg")
            .instance_market_options(
                ec2::LaunchTemplateInstanceMarketOptionsRequest::builder()
                    .market_type(ec2::MarketType::Spot)
                    .spot_options(
                        ec2::LaunchTemplateSpotMarketOptionsRequest::builder()
                            .max_price("0.05")
                            .spot_instance_type(ec2::SpotInstanceType::Persistent)
                            .block_duration_minutes(60)
                            .valid_until(DateTime::from_secs(1_900_000_000))
                            .instance_interruption_behavior(
                                ec2::InstanceInterruptionBehavior::Hibernate,
                            )
                            .build(),
                    )
                    .build(),
            )
            .credit_specification(
                ec2::CreditSpecificationRequest::builder()
                    .cpu_credits("unlimited")
                    .build(),
            )
            .cpu_options(
                ec2::LaunchTemplateCpuOptionsRequest::builder()
                    .core_count(4)
                    .threads_per_core(1)
                    .amd_sev_snp(ec2::AmdSevSnpSpecification::Enabled)
                    .nested_virtualization(ec2::NestedVirtualizationSpecification::Enabled)
                    .build(),
            )
            .capacity_reservation_specification(
                ec2::LaunchTemplateCapacityReservationSpecificationRequest::builder()
                    .capacity_reservation_preference(
                        ec2::CapacityReservationPreference::CapacityReservationsOnly,
                    )
                    .capacity_reservation_target(
                        ec2::CapacityReservationTarget::builder()
                            .capacity_reservation_id("cr-1")
                            .capacity_reservation_resource_group_arn("arn:aws:resource-groups::cr")
                            .build(),
                    )
                    .build(),
            )
            .license_specifications(
                ec2::LaunchTemplateLicenseConfigurationRequest::builder()
                    .license_configuration_arn("arn:aws:license-manager::lic")
                    .build(),
            )
            .hibernation_options(
                ec2::LaunchTemplateHibernationOptionsRequest::builder()
                    .configured(true)
                    .build(),
            )
            .metadata_options(
                ec2::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(ec2::LaunchTemplateHttpTokensState::Optional)
                    .http_put_response_hop_limit(3)
                    .http_endpoint(ec2::LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    .http_protocol_ipv6(ec2::LaunchTemplateInstanceMetadataProtocolIpv6::Enabled)
                    .instance_metadata_tags(ec2::LaunchTemplateInstanceMetadataTagsState::Disabled)
                    .build(),
            )
            .enclave_options(
                ec2::LaunchTemplateEnclaveOptionsRequest::builder()
                    .enabled(false)
                    .build(),
            )
            .instance_requirements(
                ec2::InstanceRequirementsRequest::builder()
                    .v_cpu_count(ec2::VCpuCountRangeRequest::builder().min(2).max(8).build())
                    .memory_mib(
                        ec2::MemoryMiBRequest::builder()
                            .min(4096)
                            .max(16384)
                            .build(),
                    )
                    .cpu_manufacturers(ec2::CpuManufacturer::Intel)
                    .memory_gib_per_v_cpu(
                        ec2::MemoryGiBPerVCpuRequest::builder()
                            .min(1.5)
                            .max(4.5)
                            .build(),
                    )
                    .excluded_instance_types("t2.*")
                    .instance_generations(ec2::InstanceGeneration::Current)
                    .spot_max_price_percentage_over_lowest_price(55)
                    .on_demand_max_price_percentage_over_lowest_price(25)
                    .bare_metal(ec2::BareMetal::Excluded)
                    .burstable_performance(ec2::BurstablePerformance::Included)
                    .require_hibernate_support(true)
                    .network_interface_count(
                        ec2::NetworkInterfaceCountRequest::builder()
                            .min(1)
                            .max(3)
                            .build(),
                    )
                    .local_storage(ec2::LocalStorage::Required)
                    .local_storage_types(ec2::LocalStorageType::Ssd)
                    .total_local_storage_gb(
                        ec2::TotalLocalStorageGbRequest::builder()
                            .min(10.5)
                            .max(100.5)
                            .build(),
                    )
                    .baseline_ebs_bandwidth_mbps(
                        ec2::BaselineEbsBandwidthMbpsRequest::builder()
                            .min(100)
                            .max(1000)
                            .build(),
                    )
                    .accelerator_types(ec2::AcceleratorType::Gpu)
                    .accelerator_count(
                        ec2::AcceleratorCountRequest::builder()
                            .min(0)
                            .max(2)
                            .build(),
                    )
                    .accelerator_manufacturers(ec2::AcceleratorManufacturer::Nvidia)
                    .accelerator_names(ec2::AcceleratorName::A100)
                    .accelerator_total_memory_mib(
                        ec2::AcceleratorTotalMemoryMiBRequest::builder()
                            .min(1024)
                            .max(8192)
                            .build(),
                    )
                    .network_bandwidth_gbps(
                        ec2::NetworkBandwidthGbpsRequest::builder()
                            .min(0.5)
                            .max(25.0)
                            .build(),
                    )
                    .allowed_instance_types("m5.*")
                    .max_spot_price_as_percentage_of_optimal_on_demand_price(70)
                    .baseline_performance_factors(
                        ec2::BaselinePerformanceFactorsRequest::builder()
                            .cpu(
                                ec2::CpuPerformanceFactorRequest::builder()
                                    .references(
                                        ec2::PerformanceFactorReferenceRequest::builder()
                                            .instance_family("c6i")
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .require_encryption_in_transit(true)
                    .build(),
            )
            .private_dns_name_options(
                ec2::LaunchTemplatePrivateDnsNameOptionsRequest::builder()
                    .hostname_type(ec2::HostnameType::ResourceName)
                    .enable_resource_name_dns_a_record(true)
                    .enable_resource_name_dns_aaaa_record(false)
                    .build(),
            )
            .maintenance_options(
                ec2::LaunchTemplateInstanceMaintenanceOptionsRequest::builder()
                    .auto_recovery(ec2::LaunchTemplateAutoRecoveryState::Disabled)
                    .build(),
            )
            .disable_api_stop(false)
            .operator(
                ec2::OperatorRequest::builder()
                    .principal("eks.amazonaws.com")
                    .build(),
            )
            .network_performance_options(
                ec2::LaunchTemplateNetworkPerformanceOptionsRequest::builder()
                    .bandwidth_weighting(ec2::InstanceBandwidthWeighting::Vpc1)
                    .build(),
            )
            .secondary_interfaces(
                ec2::LaunchTemplateInstanceSecondaryInterfaceSpecificationRequest::builder()
                    .delete_on_termination(false)
                    .device_index(1)
                    .private_ip_addresses(
                        ec2::SecondaryInterfacePrivateIpAddressSpecificationRequest::builder()
                            .private_ip_address("10.1.0.9")
                            .build(),
                    )
                    .private_ip_address_count(2)
                    .secondary_subnet_id("subnet-2")
                    .interface_type(ec2::SecondaryInterfaceType::Secondary)
                    .network_card_index(1)
                    .build(),
            );
        #[allow(deprecated)]
        let builder = builder
            .elastic_gpu_specifications(
                ec2::ElasticGpuSpecification::builder()
                    .r#type("eg1.medium")
                    .build(),
            )
            .elastic_inference_accelerators(
                ec2::LaunchTemplateElasticInferenceAccelerator::builder()
                    .r#type("eia1.medium")
                    .count(2)
                    .build(),
            );
        builder.build()
    }

    /// `Debug` lists every field, set or not, so an unset one shows as
    /// `name: None` at any depth. (User data is always redacted by the SDK.)
    fn unset_fields(debug: &str) -> Vec<&str> {
        debug
            .match_indices(": None")
            .map(|(at, _)| {
                let start = debug[..at].rfind([' ', '{', '(']).map_or(0, |i| i + 1);
                &debug[start..at]
            })
            .collect()
    }

    #[test]
    fn the_fixture_sets_every_field_the_sdk_has() {
        // Guards the tests below: a field added by a newer SDK shows up here
        // unset, so it cannot be forgotten by the copy without notice.
        let debug = format!("{:?}", full_response());
        assert_eq!(unset_fields(&debug), Vec::<&str>::new());
    }

    #[test]
    fn a_copied_version_has_every_request_field_set() {
        let debug = format!("{:?}", request_from_response(&full_response()));
        assert_eq!(unset_fields(&debug), Vec::<&str>::new());
    }

    #[test]
    fn a_copied_version_equals_its_source_field_by_field() {
        assert_eq!(request_from_response(&full_response()), full_request());
    }

    #[test]
    fn a_copied_version_keeps_its_user_data() {
        // `Debug` redacts user data, so the comparisons above cannot see it;
        // `PartialEq` does, but say it outright.
        let copy = request_from_response(&full_response());
        assert_eq!(copy.user_data.as_deref(), Some("IyEvYmluL3NoCmVjaG8gaGk="));
    }

    #[test]
    fn only_the_four_fields_the_request_lacks_are_dropped() {
        // Every set value in the source is set in the copy, save metadata
        // options' state, an IPv6 address's is_primary_ipv6 and the
        // operator's managed and hidden_by_default (the fixture has one of
        // each).
        let source = format!("{:?}", full_response());
        let copy = format!("{:?}", request_from_response(&full_response()));
        assert_eq!(
            source.matches("Some(").count() - copy.matches("Some(").count(),
            4
        );
        for skipped in [
            "state: Some(",
            "is_primary_ipv6: Some(",
            "managed: Some(",
            "hidden_by_default: Some(",
        ] {
            assert!(source.contains(skipped), "{skipped}");
            assert!(!copy.contains(skipped), "{skipped}");
        }
    }

    #[test]
    fn a_copied_version_keeps_absent_apart_from_empty() {
        let empty = ec2::ResponseLaunchTemplateData::builder().build();
        assert_eq!(
            request_from_response(&empty),
            ec2::RequestLaunchTemplateData::builder().build()
        );
        let lists = ec2::ResponseLaunchTemplateData::builder()
            .set_security_group_ids(Some(vec![]))
            .set_block_device_mappings(Some(vec![]))
            .build();
        let copy = request_from_response(&lists);
        assert_eq!(copy.security_group_ids, Some(vec![]));
        assert_eq!(copy.block_device_mappings, Some(vec![]));
        assert_eq!(copy.network_interfaces, None);
    }

    /// A launch configuration with every field set, except the public IP
    /// choice; security groups as given.
    fn launch_configuration(groups: &[&str]) -> asg::builders::LaunchConfigurationBuilder {
        asg::LaunchConfiguration::builder()
            .launch_configuration_name("web-lc")
            .launch_configuration_arn(
                "arn:aws:autoscaling:eu-west-1:111122223333:launchConfiguration:1",
            )
            .image_id("ami-1")
            .key_name("key-1")
            .set_security_groups(Some(groups.iter().map(|g| g.to_string()).collect()))
            .classic_link_vpc_id("vpc-classic")
            .classic_link_vpc_security_groups("sg-classic")
            .user_data("IyEvYmluL3NoCmVjaG8gaGk=")
            .instance_type("m5.large")
            .kernel_id("aki-1")
            .ramdisk_id("ari-1")
            .block_device_mappings(
                asg::BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        asg::Ebs::builder()
                            .snapshot_id("snap-1")
                            .volume_size(42)
                            .volume_type("gp3")
                            .delete_on_termination(true)
                            .iops(3001)
                            .encrypted(true)
                            .throughput(126)
                            .build(),
                    )
                    .build(),
            )
            .block_device_mappings(
                asg::BlockDeviceMapping::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .block_device_mappings(
                asg::BlockDeviceMapping::builder()
                    .device_name("/dev/sdc")
                    .no_device(true)
                    .build(),
            )
            .instance_monitoring(asg::InstanceMonitoring::builder().enabled(true).build())
            .iam_instance_profile("web-profile")
            .created_time(DateTime::from_secs(1_600_000_000))
            .ebs_optimized(true)
            .metadata_options(
                asg::InstanceMetadataOptions::builder()
                    .http_tokens(asg::InstanceMetadataHttpTokensState::Optional)
                    .http_put_response_hop_limit(2)
                    .http_endpoint(asg::InstanceMetadataEndpointState::Enabled)
                    .build(),
            )
    }

    /// The launch template data `launch_configuration` maps to, without
    /// security groups, public IP choice, Spot price or tenancy.
    fn launch_configuration_request() -> ec2::builders::RequestLaunchTemplateDataBuilder {
        ec2::RequestLaunchTemplateData::builder()
            .image_id("ami-1")
            .instance_type(ec2::InstanceType::M5Large)
            .key_name("key-1")
            .user_data("IyEvYmluL3NoCmVjaG8gaGk=")
            .kernel_id("aki-1")
            .ram_disk_id("ari-1")
            .ebs_optimized(true)
            .iam_instance_profile(
                ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name("web-profile")
                    .build(),
            )
            .block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        ec2::LaunchTemplateEbsBlockDeviceRequest::builder()
                            .snapshot_id("snap-1")
                            .volume_size(42)
                            .volume_type(ec2::VolumeType::Gp3)
                            .delete_on_termination(true)
                            .iops(3001)
                            .encrypted(true)
                            .throughput(126)
                            .build(),
                    )
                    .build(),
            )
            .block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name("/dev/sdc")
                    .no_device("")
                    .build(),
            )
            .monitoring(
                ec2::LaunchTemplatesMonitoringRequest::builder()
                    .enabled(true)
                    .build(),
            )
            .metadata_options(
                ec2::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(ec2::LaunchTemplateHttpTokensState::Optional)
                    .http_put_response_hop_limit(2)
                    .http_endpoint(ec2::LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    .build(),
            )
    }

    #[test]
    fn a_launch_configuration_maps_field_by_field() {
        let lc = launch_configuration(&["sg-1", "sg-2"]).build();
        let expected = launch_configuration_request()
            .security_group_ids("sg-1")
            .security_group_ids("sg-2")
            .build();
        assert_eq!(request_from_launch_configuration(&lc), expected);
    }

    #[test]
    fn a_launch_configuration_keeps_its_user_data() {
        let lc = launch_configuration(&[]).build();
        let data = request_from_launch_configuration(&lc);
        assert_eq!(data.user_data.as_deref(), Some("IyEvYmluL3NoCmVjaG8gaGk="));
    }

    #[test]
    fn security_groups_starting_with_sg_are_ids_the_others_names() {
        let lc = launch_configuration(&["sg-0abc", "web", "sg-0def", "default"]).build();
        let data = request_from_launch_configuration(&lc);
        assert_eq!(
            data.security_group_ids,
            Some(vec!["sg-0abc".to_string(), "sg-0def".to_string()])
        );
        assert_eq!(
            data.security_groups,
            Some(vec!["web".to_string(), "default".to_string()])
        );
        assert_eq!(data.network_interfaces, None);
    }

    #[test]
    fn no_security_groups_set_none() {
        let lc = launch_configuration(&[]).build();
        let data = request_from_launch_configuration(&lc);
        assert_eq!(data.security_group_ids, None);
        assert_eq!(data.security_groups, None);
    }

    #[test]
    fn a_public_ip_choice_moves_the_security_groups_into_one_interface() {
        for public in [true, false] {
            let lc = launch_configuration(&["sg-1", "sg-2"])
                .associate_public_ip_address(public)
                .build();
            let expected = launch_configuration_request()
                .network_interfaces(
                    ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                        .device_index(0)
                        .associate_public_ip_address(public)
                        .groups("sg-1")
                        .groups("sg-2")
                        .delete_on_termination(true)
                        .build(),
                )
                .build();
            let data = request_from_launch_configuration(&lc);
            assert_eq!(data, expected);
            // EC2 refuses instance-level groups next to an interface.
            assert_eq!(data.security_group_ids, None);
            assert_eq!(data.security_groups, None);
        }
    }

    #[test]
    fn security_group_names_are_not_dropped_when_an_interface_is_needed() {
        let lc = launch_configuration(&["sg-1", "web"])
            .associate_public_ip_address(true)
            .build();
        let data = request_from_launch_configuration(&lc);
        assert_eq!(data.network_interfaces()[0].groups(), ["sg-1"]);
        assert_eq!(data.security_group_ids, None);
        assert_eq!(data.security_groups, Some(vec!["web".to_string()]));
    }

    #[test]
    fn a_spot_price_becomes_spot_market_options() {
        let lc = launch_configuration(&[]).spot_price("0.0123").build();
        let expected = launch_configuration_request()
            .instance_market_options(
                ec2::LaunchTemplateInstanceMarketOptionsRequest::builder()
                    .market_type(ec2::MarketType::Spot)
                    .spot_options(
                        ec2::LaunchTemplateSpotMarketOptionsRequest::builder()
                            .max_price("0.0123")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(request_from_launch_configuration(&lc), expected);
    }

    #[test]
    fn placement_tenancy_becomes_placement_tenancy() {
        let lc = launch_configuration(&[])
            .placement_tenancy("dedicated")
            .build();
        let expected = launch_configuration_request()
            .placement(
                ec2::LaunchTemplatePlacementRequest::builder()
                    .tenancy(ec2::Tenancy::Dedicated)
                    .build(),
            )
            .build();
        assert_eq!(request_from_launch_configuration(&lc), expected);
    }

    #[test]
    fn an_instance_profile_arn_is_an_arn_and_anything_else_a_name() {
        let arn = "arn:aws:iam::111122223333:instance-profile/web";
        let lc = launch_configuration(&[]).iam_instance_profile(arn).build();
        let profile = request_from_launch_configuration(&lc).iam_instance_profile;
        assert_eq!(
            profile,
            Some(
                ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .arn(arn)
                    .build()
            )
        );
    }

    #[test]
    fn empty_strings_from_describe_read_as_absent() {
        // What DescribeLaunchConfigurations answers for a launch
        // configuration created without a kernel, RAM disk or key pair.
        let lc = launch_configuration(&[])
            .kernel_id("")
            .ramdisk_id("")
            .key_name("")
            .user_data("")
            .spot_price("")
            .placement_tenancy("")
            .iam_instance_profile("")
            .build();
        let data = request_from_launch_configuration(&lc);
        assert_eq!(data.kernel_id, None);
        assert_eq!(data.ram_disk_id, None);
        assert_eq!(data.key_name, None);
        assert_eq!(data.user_data, None);
        assert_eq!(data.instance_market_options, None);
        assert_eq!(data.placement, None);
        assert_eq!(data.iam_instance_profile, None);
    }

    #[test]
    fn metadata_options_are_copied_not_made_required() {
        // The caller sets HttpTokens; this mapping must not pre-empt it.
        let lc = launch_configuration(&[]).build();
        let options = request_from_launch_configuration(&lc).metadata_options;
        assert_eq!(
            options.and_then(|o| o.http_tokens),
            Some(ec2::LaunchTemplateHttpTokensState::Optional)
        );
    }

    #[test]
    fn an_empty_launch_configuration_maps_to_empty_data() {
        let lc = asg::LaunchConfiguration::builder().build();
        assert_eq!(
            request_from_launch_configuration(&lc),
            ec2::RequestLaunchTemplateData::builder().build()
        );
    }
}
