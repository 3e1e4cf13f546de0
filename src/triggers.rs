//! What wakes the controllers: each object a cache has just taken in (one by one as they
//! change, all at once at the end of a list), handed to every controller that asked for
//! it, none lost whatever becomes of the object after.
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
use kube::runtime::watcher::Event;

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
    /// and the objects are the cache's own (see [`Triggers::take`]), so a backlog costs a
    /// pointer each.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Arc<K>> {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.push(tx);
        rx
    }

    /// Hands on what `event`, just applied to `cache` by its reflector, changed: an
    /// object applied, the cache's own copy of it (one copy in memory, not two); at the end
    /// of a (re)list, everything the cache then holds, as listed (objects listed go into
    /// the cache only then). A deletion wakes nobody, as with kube's shared reflector: a
    /// deletion the controllers care about is a finalizer's, seen while the object is still
    /// there. A subscriber that is gone is dropped.
    pub fn take(&mut self, cache: &Store<K>, event: &Event<K>) {
        match event {
            Event::Apply(obj) => {
                if let Some(held) = cache.get(&ObjectRef::from_obj(obj)) {
                    self.send(&held);
                }
            }
            Event::InitDone => {
                for held in cache.state() {
                    self.send(&held);
                }
            }
            Event::Init | Event::InitApply(_) | Event::Delete(_) => {}
        }
    }

    fn send(&mut self, obj: &Arc<K>) {
        self.subscribers
            .retain(|s| s.unbounded_send(obj.clone()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::task::Poll;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector;

    use super::*;

    fn cm(name: &str, data: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.to_owned());
        c.metadata.namespace = Some("ns".to_owned());
        c.data = Some([("v".to_owned(), data.to_owned())].into());
        c
    }

    fn name(o: &ConfigMap) -> String {
        o.metadata.name.clone().unwrap_or_default()
    }

    fn data(o: &ConfigMap) -> String {
        o.data
            .as_ref()
            .and_then(|d| d.get("v"))
            .cloned()
            .unwrap_or_default()
    }

    /// What a reflector does with an event, then what `run` does.
    fn take_in(
        w: &mut reflector::store::Writer<ConfigMap>,
        t: &mut Triggers<ConfigMap>,
        ev: Event<ConfigMap>,
    ) {
        w.apply_watcher_event(&ev);
        t.take(&w.as_reader(), &ev);
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<Arc<ConfigMap>>) -> Vec<Arc<ConfigMap>> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn an_object_gone_before_its_subscriber_looks_does_not_silence_the_ones_after() {
        let (cache, mut w) = reflector::store::<ConfigMap>();
        let mut t = Triggers::default();
        let mut rx = t.subscribe();
        take_in(&mut w, &mut t, Event::Apply(cm("a", "1")));
        take_in(&mut w, &mut t, Event::Delete(cm("a", "1")));
        // Nobody had looked before it went; the subscriber gets it all the same (the
        // deletion wakes nobody), then waits for what comes next...
        assert!(cache.get(&ObjectRef::from_obj(&cm("a", "1"))).is_none());
        assert_eq!(rx.next().await.map(|o| name(&o)), Some("a".into()));
        assert!(rx.try_recv().is_err(), "the deletion woke a controller");
        let waiting = tokio::spawn(async move { rx.next().await });
        tokio::task::yield_now().await;
        // ...and is woken by it.
        take_in(&mut w, &mut t, Event::Apply(cm("b", "1")));
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
        take_in(&mut w, &mut t, Event::Init);
        take_in(&mut w, &mut t, Event::InitDone);
        for n in ["a", "b", "c"] {
            take_in(&mut w, &mut t, Event::Apply(cm(n, "1")));
        }
        for rx in [&mut one, &mut two] {
            let got = drain(rx);
            for o in &got {
                let held = cache.get(&ObjectRef::from_obj(o.as_ref())).unwrap();
                assert!(Arc::ptr_eq(o, &held), "{} is a second copy", name(o));
            }
            let names: Vec<_> = got.iter().map(|o| name(o)).collect();
            assert_eq!(names, ["a", "b", "c"]);
        }
    }

    #[test]
    fn a_list_wakes_every_object_once_it_is_in_the_cache_as_listed() {
        let (cache, mut w) = reflector::store::<ConfigMap>();
        let mut t = Triggers::default();
        let mut rx = t.subscribe();
        // The first list: nothing before its end, then each object once.
        take_in(&mut w, &mut t, Event::Init);
        take_in(&mut w, &mut t, Event::InitApply(cm("a", "1")));
        take_in(&mut w, &mut t, Event::InitApply(cm("b", "1")));
        assert!(
            drain(&mut rx).is_empty(),
            "woken before the list was in the cache"
        );
        take_in(&mut w, &mut t, Event::InitDone);
        let mut got: Vec<_> = drain(&mut rx).iter().map(|o| (name(o), data(o))).collect();
        got.sort();
        assert_eq!(got, [("a".into(), "1".into()), ("b".into(), "1".into())]);
        // A relist after a gap in the watch: a changed, b gone, c new. Each object is woken
        // as the new list has it; b, gone, wakes nobody.
        take_in(&mut w, &mut t, Event::Init);
        take_in(&mut w, &mut t, Event::InitApply(cm("a", "2")));
        take_in(&mut w, &mut t, Event::InitApply(cm("c", "1")));
        take_in(&mut w, &mut t, Event::InitDone);
        let mut got: Vec<_> = drain(&mut rx).iter().map(|o| (name(o), data(o))).collect();
        got.sort();
        assert_eq!(got, [("a".into(), "2".into()), ("c".into(), "1".into())]);
        assert_eq!(cache.state().len(), 2);
    }

    #[test]
    fn a_subscriber_that_is_gone_is_dropped_and_the_rest_still_get_theirs() {
        let (_cache, mut w) = reflector::store::<ConfigMap>();
        let mut t = Triggers::default();
        drop(t.subscribe());
        let mut kept = t.subscribe();
        take_in(&mut w, &mut t, Event::Apply(cm("a", "1")));
        assert_eq!(t.subscribers.len(), 1);
        let got = futures::executor::block_on(futures::future::poll_fn(|cx| {
            Poll::Ready(kept.poll_next_unpin(cx))
        }));
        assert!(matches!(got, Poll::Ready(Some(o)) if name(&o) == "a"));
    }
}
