//! A small CRI client over a unix socket, built on the same generated types the
//! proxy uses. The end-to-end tests and the pass-through benchmark drive the real
//! sockets (pullgate's and containerd's) with it; crictl is not packaged here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

use super::{v1, v1alpha2};

/// Clients for every CRI service on one unix-socket channel.
#[derive(Clone)]
pub struct CriClient {
    channel: Channel,
    pub runtime: v1::runtime_service_client::RuntimeServiceClient<Channel>,
    pub image: v1::image_service_client::ImageServiceClient<Channel>,
    pub runtime_v1alpha2: v1alpha2::runtime_service_client::RuntimeServiceClient<Channel>,
    pub image_v1alpha2: v1alpha2::image_service_client::ImageServiceClient<Channel>,
}

impl CriClient {
    /// Connects lazily: the socket is dialled on the first call and redialled after
    /// the peer goes away, as the kubelet's client does.
    pub fn connect(socket: &Path) -> Result<CriClient, tonic::transport::Error> {
        let socket: Arc<PathBuf> = Arc::new(socket.to_owned());
        // The URI is required by tonic but unused: every connection goes to `socket`.
        let channel = Endpoint::from_static("http://localhost").connect_with_connector_lazy(
            tower::service_fn(move |_| {
                let socket = Arc::clone(&socket);
                async move { UnixStream::connect(&*socket).await.map(TokioIo::new) }
            }),
        );
        Ok(CriClient {
            runtime: v1::runtime_service_client::RuntimeServiceClient::new(channel.clone()),
            image: v1::image_service_client::ImageServiceClient::new(channel.clone()),
            runtime_v1alpha2: v1alpha2::runtime_service_client::RuntimeServiceClient::new(
                channel.clone(),
            ),
            image_v1alpha2: v1alpha2::image_service_client::ImageServiceClient::new(
                channel.clone(),
            ),
            channel,
        })
    }

    /// The underlying channel, for calls the generated clients cannot make.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Calls an arbitrary unary method with an empty request message and discards
    /// the response message. Used to reach methods the generated clients do not know
    /// (a newer kubelet's) and services that are not the CRI.
    pub async fn call_empty(&self, path: &'static str) -> Result<(), tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        grpc.unary(
            tonic::Request::new(()),
            PathAndQuery::from_static(path),
            codec,
        )
        .await
        .map(|response| response.into_inner())
    }
}
