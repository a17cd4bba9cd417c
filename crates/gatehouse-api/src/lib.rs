//! Gatehouse REST API: the admin surface the CLI (and later the web console)
//! uses. Every admin command goes through it, so the running gateway is the
//! single writer of its store and of its evidence log.
//!
//! Authentication: `Authorization: Bearer <admin key>`. The admin key is
//! generated into the data directory on first start (mode 0600); whoever can
//! read it administers the gateway. Its SHA-256 is compared in constant time.
//! Approvers and auditors send their own Gatehouse or OIDC token instead; the
//! web console under `/ui/` signs them in and sends it for them.

mod access_review;
mod admin_key;
mod approvals;
mod caller;
pub mod console;
mod evidence;
mod masking;
mod routes;
mod ssh;

pub use access_review::{AccessReview, IdentityAccess, SignOffRequest, SignedOff, TokenAccess};
pub use admin_key::{AdminKey, ADMIN_KEY_PREFIX};
pub use approvals::{ApprovalFilter, Decided, VoteRequest};
pub use caller::Roles;
pub use console::{Console, ConsoleSettings, SignInLifetime};
pub use evidence::{EvidencePack, EvidenceReview, PackRequest, ReviewError, Sealed};
pub use masking::{ColumnFilter, DiscoverRequest, DiscoveredColumn};
pub use routes::{
    policy_event, router, ApiState, CreateTokenRequest, CreatedToken, ErrorBody, PolicyFileSummary,
    PolicyReloaded,
};
pub use ssh::{CertificateRequest, IssuedCertificate, RegisterKeyRequest};

/// Serves the API on `listener` until `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}
