//! Completing an ExternalName answer: the CNAME is followed to the target's records through
//! the answer chain: the cluster zone while the chain of names stays in it, then the other
//! stages in order (zone files, the AAAA filter, the forwarder's cache and upstreams).
//!
//! The CNAME always stays in the answer, and the response code is the one for the last name
//! of the chain (RFC 1034 §3.6.2, RFC 6604 §3): NXDOMAIN when the target does not exist and
//! NOERROR for NODATA, each with the target zone's SOA in authority when there is one; when
//! the target cannot be resolved (every upstream down or silent), SERVFAIL with the CNAME.
//! The same on the first ask and from the cache, since both read the cached upstream answer.

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, Record, RecordType};
use hickory_server::server::Request;

use super::DnsHandler;
use super::chain::Stage;
use super::general::outgoing;
use crate::wire::MAX_CNAME_CHAIN;

/// Where a CNAME chain ended.
pub(super) struct ChainEnd {
    /// The records after the first CNAME.
    pub answers: Vec<Record>,
    /// The authority section of the last name's answer (its zone's SOA when negative).
    pub authorities: Vec<Record>,
    /// The response code for the last name.
    pub rcode: ResponseCode,
    /// Whether the upstream's reply stayed truncated.
    pub truncated: bool,
}

impl ChainEnd {
    /// The chain ends here with `answers` and no more to say (NOERROR).
    fn found(answers: Vec<Record>) -> Self {
        Self {
            answers,
            authorities: Vec::new(),
            rcode: ResponseCode::NoError,
            truncated: false,
        }
    }
}

impl DnsHandler {
    /// Follows the CNAME to `first` for `qtype`. Without a forwarder (or with AAAA kept
    /// from the upstreams) the chain ends at the last name it could resolve, NOERROR.
    pub(super) async fn complete_cname(
        &self,
        request: &Request,
        first: Name,
        qtype: RecordType,
    ) -> ChainEnd {
        let mut records = Vec::new();
        let mut target = first;
        for _ in 0..MAX_CNAME_CHAIN {
            // The cluster zone: its answer, and the next name when it is a CNAME again.
            match self.cluster_answer(&target, qtype) {
                Some((_, rendered, Some(next))) => {
                    records.extend(rendered.answers);
                    target = next;
                    continue;
                }
                Some((rcode, rendered, None)) => {
                    records.extend(rendered.answers);
                    return ChainEnd {
                        answers: records,
                        authorities: rendered.authorities,
                        rcode,
                        truncated: false,
                    };
                }
                None => {}
            }
            return self.chase_outside(request, target, qtype, records).await;
        }
        // A chain longer than this is not followed further: what was found stands.
        ChainEnd::found(records)
    }
}

impl DnsHandler {
    /// The chain's end for `target`, a name outside the cluster zone: the first of the other
    /// stages that knows it; the names found so far when none does.
    async fn chase_outside(
        &self,
        request: &Request,
        target: Name,
        qtype: RecordType,
        mut records: Vec<Record>,
    ) -> ChainEnd {
        for stage in self.chain.iter() {
            match stage {
                Stage::Cluster | Stage::Rewrite(_) => {}
                Stage::Hosts(file) => {
                    if let Some(found) = self.hosts_records(file.as_ref(), &target, qtype) {
                        records.extend(found);
                        return ChainEnd::found(records);
                    }
                }
                Stage::StaticZones(zones) => {
                    if let Some(z) = zones.load().lookup(&target, qtype) {
                        records.extend(z.answers);
                        return ChainEnd {
                            answers: records,
                            authorities: z.authorities,
                            rcode: z.rcode,
                            truncated: false,
                        };
                    }
                }
                Stage::AaaaFilter if qtype == RecordType::AAAA => break,
                Stage::AaaaFilter => {}
                Stage::Forward(fwd) => {
                    let mut q = outgoing(request, target, qtype);
                    q.rd = true;
                    return match fwd.resolve(&q).await {
                        Ok(reply) => {
                            records.extend(reply.answers);
                            ChainEnd {
                                answers: records,
                                authorities: reply.authorities,
                                rcode: reply.rcode,
                                truncated: reply.truncated,
                            }
                        }
                        Err(error) => {
                            tracing::debug!(name = %q.name, %error, "ExternalName target not resolved");
                            ChainEnd {
                                answers: records,
                                authorities: Vec::new(),
                                rcode: ResponseCode::ServFail,
                                truncated: false,
                            }
                        }
                    };
                }
            }
        }
        ChainEnd::found(records)
    }
}
