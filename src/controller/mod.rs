//! The controllers: they allocate, write statuses and owned objects, and wake the router's
//! writer ([`crate::writer`]), which alone talks to the router. What they share is in
//! [`crate::context`].

pub mod pools;
pub mod portrule;
pub mod router;
pub mod vmnetwork;

/// Error of a reconcile: transient (retried with backoff) unless it says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Waiting on the router (deletion while it is unreachable, for example).
    #[error("{0}")]
    Waiting(String),
    /// JSON (de)serialisation.
    #[error("serialising: {0}")]
    Json(#[from] serde_json::Error),
    /// The cached copy was older than the server's (a race with our own write): retried
    /// at once from the newer copy, not reported.
    #[error("stale cache: {0}")]
    Stale(String),
}

impl Error {
    /// A fixed label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Finalizer(_) => "FinalizerError",
            Error::Waiting(_) => "Waiting",
            Error::Json(_) => "SerializationError",
            Error::Stale(_) => "Stale",
        }
    }
}

/// `obj` with the operator's finalizer: added by server-side apply when it is missing, and
/// the apiserver's answer returned, so the finalizer helper that runs next finds it and
/// goes straight to its apply step.
///
/// The finalizer helper's own way (a JSON patch that tests the finalizer list it saw)
/// fails with 422 whenever the cache is behind the server, which under load is often; an
/// apply of just this one finalizer cannot conflict, and the uid in it keeps it from
/// touching a namesake made after the cached object was deleted.
pub async fn with_finalizer<K>(
    api: &kube::Api<K>,
    obj: std::sync::Arc<K>,
) -> Result<std::sync::Arc<K>, Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = obj.meta();
    let has = meta
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == vmnet_api::FINALIZER);
    if has || meta.deletion_timestamp.is_some() {
        return Ok(obj);
    }
    let name = meta.name.clone().unwrap_or_default();
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": name,
            "uid": meta.uid,
            "finalizers": [vmnet_api::FINALIZER],
        },
    });
    let params = kube::api::PatchParams::apply(vmnet_api::FIELD_MANAGER).force();
    let written = api
        .patch(&name, &params, &kube::api::Patch::Apply(&body))
        .await?;
    Ok(std::sync::Arc::new(written))
}

/// A reconcile's outcome from the finalizer helper's.
///
/// Two of its failures are races with our own writes, not errors, and are not reported as
/// such: adding the finalizer to a cached copy older than the server's (its JSON patch
/// tests the finalizer list it saw, and the server answers 422 Invalid, or 409) happens
/// when a reconcile starts from the cache before the watch has delivered the previous
/// write; the next reconcile sees the new copy. Removing it from an object that is already
/// gone (404) means the deletion finished.
pub fn settle(
    result: Result<kube::runtime::controller::Action, kube::runtime::finalizer::Error<Error>>,
) -> Result<kube::runtime::controller::Action, Error> {
    use kube::runtime::finalizer::Error as F;
    match result {
        Ok(a) => Ok(a),
        Err(F::ApplyFailed(e) | F::CleanupFailed(e)) => Err(e),
        Err(F::AddFinalizer(kube::Error::Api(e))) if e.code == 422 || e.code == 409 => Err(
            Error::Stale(format!("the finalizer was added meanwhile ({})", e.reason)),
        ),
        Err(F::RemoveFinalizer(kube::Error::Api(e))) if e.code == 404 => {
            Ok(kube::runtime::controller::Action::await_change())
        }
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}
