//! One cluster as Portcullis talks to it: a client, who we are there (as
//! the apiserver says), its clock and its limits.

use std::sync::Mutex;

use chrono::TimeDelta;
use kube::api::{Api, DynamicObject};
use kube::config::AuthInfo;
use kube::Client;

use super::clock::ClusterClock;
use super::identity::{may_decide, whoami, Identity};
use super::request_resource;
use super::settings::{ClusterSettings, SettingsCache, SettingsError};

/// Where a test can make the grant engine misbehave as a crash, a slow
/// process or a concurrent writer would, to prove the rest copes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The approving process dies right after claiming the decision.
    CrashAfterClaim,
    /// ... after creating its bindings, before recording their uids.
    CrashBeforeRecord,
    /// The approving process stalls this long after its claim.
    PauseAfterClaim(std::time::Duration),
    /// Someone writes the request between a revoke's deletions and its
    /// status write (so that write meets a 409).
    ConflictBeforeEndWrite,
}

/// The points in the grant engine where a [`Fault`] can strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultPoint {
    AfterClaim,
    BeforeRecord,
    BeforeEndWrite,
}

pub struct KubeCluster {
    /// The kubeconfig context name.
    pub context: String,
    pub client: Client,
    pub identity: Identity,
    /// Whether this identity may decide here (write a request's status);
    /// None when the apiserver did not say.
    pub may_decide: Option<bool>,
    /// Whether watches start with a streaming list (the apiserver sends
    /// what it holds as watch events from its cache, rather than pages
    /// read from etcd), as the apiserver says when first asked, at the
    /// first watch (a verb that only reads or decides never asks). On in
    /// the 1.34 the tests run: twice as fast to the full queue at 20,000
    /// requests, and no page of objects held at once.
    streaming_lists: tokio::sync::OnceCell<bool>,
    pub clock: ClusterClock,
    settings: SettingsCache,
    fault: Mutex<Option<Fault>>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("context", &self.context)
            .field("identity", &self.identity)
            .finish()
    }
}

/// Whether this apiserver serves streaming lists: a watch of no
/// AccessRequest (a name none has) with `sendInitialEvents` ends its
/// initial events with a bookmark at once where the feature is on, and is
/// refused where it is off. Asked only of an apiserver that knows the
/// parameter (1.27+; older ones ignore it and would send nothing).
async fn streams_lists(client: &Client) -> bool {
    use futures::{StreamExt, TryStreamExt};
    let knows_it = client.apiserver_version().await.is_ok_and(|v| {
        let number = |s: &str| s.trim_end_matches('+').parse::<u32>().unwrap_or(0);
        (number(&v.major), number(&v.minor)) >= (1, 27)
    });
    if !knows_it {
        return false;
    }
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &request_resource());
    let params = kube::api::WatchParams::streaming_lists()
        .fields("metadata.name=portcullis-probe.no-such-request")
        .timeout(5);
    let probe = async {
        let mut events = api.watch(&params, "").await.ok()?.boxed();
        match events.try_next().await.ok()? {
            Some(kube::api::WatchEvent::Bookmark(_)) => Some(true),
            _ => Some(false),
        }
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(3), probe).await,
        Ok(Some(true))
    )
}

impl KubeCluster {
    /// Connects: asks the apiserver who we are and reads its clock.
    /// `kubeconfig_user` is only the unverified fallback name.
    pub async fn connect(
        context: &str,
        client: Client,
        auth: &AuthInfo,
        kubeconfig_user: &str,
    ) -> Self {
        Self::connect_with_clock(
            context,
            client,
            auth,
            kubeconfig_user,
            ClusterClock::default(),
        )
        .await
    }

    /// As [`Self::connect`], with a clock whose local reading is off (tests).
    pub async fn connect_with_clock(
        context: &str,
        client: Client,
        auth: &AuthInfo,
        kubeconfig_user: &str,
        clock: ClusterClock,
    ) -> Self {
        let (identity, synced, may_decide) = tokio::join!(
            whoami(&client, auth, kubeconfig_user),
            clock.sync(&client),
            may_decide(&client)
        );
        if let Err(e) = synced {
            tracing::warn!(%context, error = %e, "could not read the apiserver's clock yet");
        }
        tracing::info!(%context, user = %identity.user, verified_by = %identity.verified_by, skew_ms = clock.offset().num_milliseconds(), "connected");
        Self {
            context: context.into(),
            client,
            identity,
            may_decide,
            streaming_lists: tokio::sync::OnceCell::new(),
            clock,
            settings: SettingsCache::default(),
            fault: Mutex::new(None),
        }
    }

    /// How a watch of this cluster starts (see [`Self::streaming_lists`]).
    pub async fn watch_config(&self) -> kube::runtime::watcher::Config {
        let config = kube::runtime::watcher::Config::default();
        let streaming = self
            .streaming_lists
            .get_or_init(|| streams_lists(&self.client))
            .await;
        if *streaming {
            config.streaming_lists()
        } else {
            config
        }
    }

    pub fn requests(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &request_resource())
    }

    pub fn user(&self) -> &str {
        &self.identity.user
    }

    /// The cluster's limits (cached for a few seconds).
    pub async fn settings(&self) -> Result<ClusterSettings, SettingsError> {
        self.settings.get(&self.client).await
    }

    /// Makes the next approval stop at `fault` as if its process died
    /// (no clean-up): tests prove the reaper finishes or undoes it.
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: Option<Fault>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }

    /// Takes the injected fault if it strikes at `at`.
    pub(crate) fn take_fault(&self, at: FaultPoint) -> Option<Fault> {
        let mut slot = self.fault.lock().ok()?;
        let strikes = matches!(
            (*slot, at),
            (
                Some(Fault::CrashAfterClaim | Fault::PauseAfterClaim(_)),
                FaultPoint::AfterClaim
            ) | (Some(Fault::CrashBeforeRecord), FaultPoint::BeforeRecord)
                | (
                    Some(Fault::ConflictBeforeEndWrite),
                    FaultPoint::BeforeEndWrite
                )
        );
        if strikes {
            slot.take()
        } else {
            None
        }
    }

    /// The clock skew to the apiserver, as measured.
    pub fn skew(&self) -> TimeDelta {
        self.clock.offset()
    }
}
