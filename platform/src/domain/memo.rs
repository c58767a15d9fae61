//! Reads every audited change repeats and a batch of changes cannot alter: the
//! organization's active webhook subscriptions, its enabled workflows for an event, whether
//! it has segments, whether a client is in the trash. A workflow batch makes hundreds of changes in one transaction; inside
//! [`within`] each of these is read once per batch instead of once per change. Outside it,
//! every read goes to the database as before.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;

type Memo = HashMap<String, Box<dyn Any>>;

thread_local! {
    // why: the reads happen many calls below the batch (audit → outbox, workflows,
    // segments), synchronously on the thread that holds the batch's connection.
    static MEMO: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

/// Runs `f` with the reads of [`read`] kept for its duration. Only for work that creates,
/// changes and deletes no subscription, workflow or segment (workflow steps: none of them
/// does).
pub fn within<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Memo>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            MEMO.with(|m| *m.borrow_mut() = before);
        }
    }
    let _restore = Restore(MEMO.with(|m| m.borrow_mut().replace(Memo::new())));
    f()
}

/// `load()`, or inside [`within`] what it answered the first time for `key`.
pub fn read<T, E>(key: String, load: impl FnOnce() -> Result<T, E>) -> Result<T, E>
where
    T: Clone + 'static,
{
    let kept = MEMO.with(|m| {
        m.borrow()
            .as_ref()
            .map(|m| m.get(&key).and_then(|v| v.downcast_ref::<T>()).cloned())
    });
    match kept {
        None => load(),
        Some(Some(v)) => Ok(v),
        Some(None) => {
            let v = load()?;
            MEMO.with(|m| {
                if let Some(m) = m.borrow_mut().as_mut() {
                    m.insert(key, Box::new(v.clone()));
                }
            });
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_once_inside_and_every_time_outside() {
        let mut loads = 0;
        let get = |loads: &mut i32| {
            read::<i32, ()>("k".into(), || {
                *loads += 1;
                Ok(*loads)
            })
        };
        assert_eq!(get(&mut loads), Ok(1));
        assert_eq!(get(&mut loads), Ok(2));
        within(|| {
            assert_eq!(get(&mut loads), Ok(3));
            assert_eq!(get(&mut loads), Ok(3));
        });
        assert_eq!(get(&mut loads), Ok(4));
    }
}
