//! What wakes the controllers: each object a cache has just taken in, handed to every
//! controller that asked for it, none lost whatever becomes of the object after.
//!
//! Why not kube's shared reflector (`reflector::store_shared` and `Writer::subscribe`): it
//! hands its subscribers references and looks each one up in the cache when the
//! subscriber polls. A reference whose object has left the cache by then makes the poll
//! return `Pending` with no waker registered (kube-runtime 5.0.0, `ReflectHandle::poll_next`
//! in `reflector/dispatcher.rs`), so that controller hears nothing more until something
//! else happens to wake it, and what queues meanwhile holds the reflector back once 1,024
//! references wait. Watching every namespace, objects come and go all the time: in CI
//! (2026-12-07) a new PortRule waited over a minute for its first reconcile that way.
//! Here the object itself is handed on, so there is nothing to look up later.

use std::sync::Arc;

use futures::channel::mpsc;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

/// Hands each object to every subscriber.
pub struct Triggers<K> {
    subscribers: Vec<mpsc::UnboundedSender<Arc<K>>>,
}

impl<K> std::fmt::Debug for Triggers<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers")
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl<K> Default for Triggers<K> {
    fn default() -> Self {
        Triggers {
            subscribers: Vec::new(),
        }
    }
}

impl<K> Triggers<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// A new subscriber: it gets every object sent from now on, in order. Unbounded: a
    /// controller takes each at once into its queue (which keeps one entry per object),
    /// and the objects are the cache's own (see [`Triggers::send`]), so a backlog costs a
    /// pointer each.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Arc<K>> {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.push(tx);
        rx
    }

    /// Hands `obj`, just taken in by the reflector behind `cache`, to every subscriber: the
    /// cache's own copy (one copy in memory, not two). An object the cache no longer holds
    /// was deleted and wakes nobody, as with kube's shared reflector (a deletion the
    /// controllers care about is a finalizer's, seen while the object is still there). A
    /// subscriber that is gone is dropped.
    pub fn send(&mut self, cache: &Store<K>, obj: &K) {
        let Some(shared) = cache.get(&ObjectRef::from_obj(obj)) else {
            return;
        };
        self.subscribers
            .retain(|s| s.unbounded_send(shared.clone()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::task::Poll;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;

    fn cm(name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.to_owned());
        c.metadata.namespace = Some("ns".to_owned());
        c
    }

    fn name(o: &ConfigMap) -> &str {
        o.metadata.name.as_deref().unwrap_or_default()
    }

    /// What a reflector does with an event, then what `run` does with the object.
    fn take_in(
        w: &mut reflector::store::Writer<ConfigMap>,
        t: &mut Triggers<ConfigMap>,
        ev: Event<ConfigMap>,
    ) {
        w.apply_watcher_event(&ev);
        let cache = w.as_reader();
        match ev {
            Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => t.send(&cache, &o),
            Event::Init | Event::InitDone => {}
        }
    }

    #[tokio::test]
    async fn an_object_gone_before_its_subscriber_looks_does_not_silence_the_ones_after() {
        let (cache, mut w) = reflector::store::<ConfigMap>();
        let mut t = Triggers::default();
        let mut rx = t.subscribe();
        take_in(&mut w, &mut t, Event::Apply(cm("a")));
        take_in(&mut w, &mut t, Event::Delete(cm("a")));
        // Nobody had looked before it went; the subscriber gets it all the same (the
        // deletion wakes nobody), then waits for what comes next...
        assert!(cache.get(&ObjectRef::from_obj(&cm("a"))).is_none());
        assert_eq!(
            rx.next().await.map(|o| name(&o).to_owned()),
            Some("a".into())
        );
        assert!(rx.try_recv().is_err(), "the deletion woke a controller");
        let waiting = tokio::spawn(async move { rx.next().await });
        tokio::task::yield_now().await;
        // ...and is woken by it.
        take_in(&mut w, &mut t, Event::Apply(cm("b")));
        let b = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the subscriber was not woken by the next object")
            .unwrap()
            .unwrap();
        assert_eq!(name(&b), "b");
    }

    #[test]
    fn every_subscriber_gets_every_object_in_order_and_the_caches_own_copy() {
        let (cache, mut w) = reflector::store::<ConfigMap>();
        let mut t = Triggers::default();
        let mut one = t.subscribe();
        let mut two = t.subscribe();
        for n in ["a", "b", "c"] {
            take_in(&mut w, &mut t, Event::Apply(cm(n)));
        }
        for rx in [&mut one, &mut two] {
            let mut got = Vec::new();
            while let Ok(o) = rx.try_recv() {
                let held = cache.get(&ObjectRef::from_obj(o.as_ref())).unwrap();
                assert!(Arc::ptr_eq(&o, &held), "{} is a second copy", name(&o));
                got.push(name(&o).to_owned());
            }
            assert_eq!(got, ["a", "b", "c"]);
        }
    }

    #[test]
    fn a_subscriber_that_is_gone_is_dropped_and_the_rest_still_get_theirs() {
        let (_cache, mut w) = reflector::store::<ConfigMap>();
        let mut t = Triggers::default();
        drop(t.subscribe());
        let mut kept = t.subscribe();
        take_in(&mut w, &mut t, Event::Apply(cm("a")));
        assert_eq!(t.subscribers.len(), 1);
        let got = futures::executor::block_on(futures::future::poll_fn(|cx| {
            Poll::Ready(kept.poll_next_unpin(cx))
        }));
        assert!(matches!(got, Poll::Ready(Some(o)) if name(&o) == "a"));
    }
}
