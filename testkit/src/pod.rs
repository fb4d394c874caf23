//! The CRI steps of a pod's life on a [`CriClient`], one call each, as the kubelet
//! makes them: pull, look up and remove an image, run a host-network sandbox,
//! create and start a container in it, stop and remove both. A failing step (but
//! a pull, whose status tests look at) panics with the CRI method's name.

use pullgate::cri::v1;

use crate::{pod_config, CriClient};

/// A pod sandbox that RunPodSandbox made, with the config it was made from (the
/// kubelet passes it again with CreateContainer).
pub struct Pod {
    pub id: String,
    pub config: v1::PodSandboxConfig,
}

/// `image` as a CRI image spec.
pub fn image_spec(image: &str) -> Option<v1::ImageSpec> {
    Some(v1::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    })
}

/// PullImage of `image`: containerd's `image_ref`, or the status the call got.
pub async fn pull(client: &CriClient, image: &str) -> Result<String, tonic::Status> {
    pull_with_auth(client, image, None).await
}

/// PullImage of `image` with the pod's credentials `auth` (as the kubelet sends
/// them from an image pull secret): `image_ref`, or the status the call got.
pub async fn pull_with_auth(
    client: &CriClient,
    image: &str,
    auth: Option<v1::AuthConfig>,
) -> Result<String, tonic::Status> {
    client
        .image
        .clone()
        .pull_image(v1::PullImageRequest {
            image: image_spec(image),
            auth,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

/// PullImage of `image` that must succeed: its `image_ref`; panics with the status.
pub async fn pull_ok(client: &CriClient, image: &str) -> String {
    pull(client, image)
        .await
        .unwrap_or_else(|e| panic!("PullImage {image}: {e:?}"))
}

/// ImageStatus of `image`: the image, `None` when the store has no such image.
pub async fn image_status(client: &CriClient, image: &str) -> Option<v1::Image> {
    client
        .image
        .clone()
        .image_status(v1::ImageStatusRequest {
            image: image_spec(image),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
}

/// RemoveImage of `image`.
pub async fn remove_image(client: &CriClient, image: &str) {
    client
        .image
        .clone()
        .remove_image(v1::RemoveImageRequest {
            image: image_spec(image),
        })
        .await
        .expect("RemoveImage");
}

/// A container `main` running `/bin/sleep 3600` from `image_ref`.
pub fn sleep_container(image_ref: &str) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "main".to_owned(),
            attempt: 0,
        }),
        image: image_spec(image_ref),
        command: vec!["/bin/sleep".to_owned(), "3600".to_owned()],
        ..Default::default()
    }
}

impl Pod {
    /// RunPodSandbox of [`pod_config`]`(name)`: host network, namespace `pullgate-e2e`.
    pub async fn run(client: &CriClient, name: &str) -> Pod {
        Pod::run_in(client, name, "pullgate-e2e").await
    }

    /// [`Pod::run`] in Kubernetes namespace `namespace`.
    pub async fn run_in(client: &CriClient, name: &str, namespace: &str) -> Pod {
        let mut config = pod_config(name);
        if let Some(metadata) = config.metadata.as_mut() {
            metadata.namespace = namespace.to_owned();
        }
        let id = client
            .runtime
            .clone()
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        Pod { id, config }
    }

    /// CreateContainer of `container` in this pod; its id.
    pub async fn create_container(
        &self,
        client: &CriClient,
        container: v1::ContainerConfig,
    ) -> String {
        self.try_create_container(client, container)
            .await
            .expect("CreateContainer")
    }

    /// CreateContainer of `container` in this pod: its id, or the status the call got.
    pub async fn try_create_container(
        &self,
        client: &CriClient,
        container: v1::ContainerConfig,
    ) -> Result<String, tonic::Status> {
        client
            .runtime
            .clone()
            .create_container(v1::CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(container),
                sandbox_config: Some(self.config.clone()),
            })
            .await
            .map(|answer| answer.into_inner().container_id)
    }

    pub async fn stop(&self, client: &CriClient) {
        client
            .runtime
            .clone()
            .stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: self.id.clone(),
            })
            .await
            .expect("StopPodSandbox");
    }

    pub async fn remove(&self, client: &CriClient) {
        client
            .runtime
            .clone()
            .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                pod_sandbox_id: self.id.clone(),
            })
            .await
            .expect("RemovePodSandbox");
    }
}

pub async fn start_container(client: &CriClient, container_id: &str) {
    client
        .runtime
        .clone()
        .start_container(v1::StartContainerRequest {
            container_id: container_id.to_owned(),
        })
        .await
        .expect("StartContainer");
}

/// StopContainer with `timeout` seconds before SIGKILL.
pub async fn stop_container(client: &CriClient, container_id: &str, timeout: i64) {
    client
        .runtime
        .clone()
        .stop_container(v1::StopContainerRequest {
            container_id: container_id.to_owned(),
            timeout,
        })
        .await
        .expect("StopContainer");
}

/// ContainerStatus of `container_id`: its state (a [`v1::ContainerState`] as `i32`).
pub async fn container_state(client: &CriClient, container_id: &str) -> i32 {
    client
        .runtime
        .clone()
        .container_status(v1::ContainerStatusRequest {
            container_id: container_id.to_owned(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("status")
        .state
}

pub async fn remove_container(client: &CriClient, container_id: &str) {
    client
        .runtime
        .clone()
        .remove_container(v1::RemoveContainerRequest {
            container_id: container_id.to_owned(),
        })
        .await
        .expect("RemoveContainer");
}
