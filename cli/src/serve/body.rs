//! A body fed chunk by chunk from a channel: what the filter releases, as it releases it.

use super::pipe::Item;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc::Receiver;

pub struct ChannelBody {
    rx: Option<Receiver<Item>>,
}

impl ChannelBody {
    pub fn new(rx: Receiver<Item>) -> Self {
        Self { rx: Some(rx) }
    }

    pub fn empty() -> Self {
        Self { rx: None }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.rx.as_mut() {
            None => Poll::Ready(None),
            Some(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Some(Err(()))) => {
                    self.rx = None;
                    Poll::Ready(Some(Err(std::io::Error::other("stream reset"))))
                }
                Poll::Ready(None) => {
                    self.rx = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
