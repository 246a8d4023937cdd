//! The `Runnable` trait: anything that turns an input into an output, one at a time
//! (`invoke`), as a stream of chunks (`stream`), or many at once (`batch`); and composition:
//! `a.pipe(b)` or `a | b` feeds a's output to b.

use crate::Result;
use std::marker::PhantomData;
use std::ops::BitOr;
use std::sync::Arc;

/// Chunks of an output as they come; an error ends the stream.
pub type Chunks<'a, T> = Box<dyn Iterator<Item = Result<T>> + 'a>;

/// A stream of exactly one item.
pub fn once<'a, T: 'a>(item: Result<T>) -> Chunks<'a, T> {
    Box::new(std::iter::once(item))
}

/// A step of a chain: templates, models, parsers, closures and their compositions.
pub trait Runnable: Send + Sync {
    type Input;
    type Output;

    /// Run on one input.
    fn invoke(&self, input: Self::Input) -> Result<Self::Output>;

    /// Run on one input, yielding the output in chunks as they are ready: a model yields text
    /// deltas, which joined are its `invoke` text. By default the whole output is one chunk.
    fn stream<'a>(&'a self, input: Self::Input) -> Chunks<'a, Self::Output> {
        once(self.invoke(input))
    }

    /// Run on many inputs; outputs in input order. A model runs them all together (one
    /// engine batch, or concurrent requests); by default they run one after another.
    fn batch(&self, inputs: Vec<Self::Input>) -> Result<Vec<Self::Output>> {
        inputs.into_iter().map(|i| self.invoke(i)).collect()
    }

    /// `stream` of `upstream | self`. By default `upstream` runs to completion and `self`
    /// streams its output; a runnable that can work on chunks (such as [`crate::StrOutputParser`])
    /// passes `upstream`'s stream through instead.
    fn stream_after<'a, U>(&'a self, upstream: &'a U, input: U::Input) -> Chunks<'a, Self::Output>
    where
        U: Runnable<Output = Self::Input>,
        Self: Sized,
    {
        match upstream.invoke(input) {
            Ok(mid) => self.stream(mid),
            Err(e) => once(Err(e)),
        }
    }

    /// `self` then `next` (the same as `self | next`).
    fn pipe<R>(self, next: R) -> Pipe<Self, R>
    where
        Self: Sized,
        R: Runnable<Input = Self::Output>,
    {
        Pipe {
            first: self,
            second: next,
        }
    }
}

/// `first` then `second`: made by [`Runnable::pipe`] or `first | second`.
#[derive(Debug, Clone)]
pub struct Pipe<A, B> {
    pub first: A,
    pub second: B,
}

impl<A, B> Runnable for Pipe<A, B>
where
    A: Runnable,
    B: Runnable<Input = A::Output>,
{
    type Input = A::Input;
    type Output = B::Output;
    fn invoke(&self, input: A::Input) -> Result<B::Output> {
        self.second.invoke(self.first.invoke(input)?)
    }
    fn stream<'a>(&'a self, input: A::Input) -> Chunks<'a, B::Output> {
        self.second.stream_after(&self.first, input)
    }
    fn batch(&self, inputs: Vec<A::Input>) -> Result<Vec<B::Output>> {
        self.second.batch(self.first.batch(inputs)?)
    }
}

/// A plain function as a step: `RunnableLambda::new(|s: String| Ok(s.to_uppercase()))`.
pub struct RunnableLambda<F, I, O> {
    f: F,
    io: PhantomData<fn(I) -> O>,
}

impl<F, I, O> RunnableLambda<F, I, O>
where
    F: Fn(I) -> Result<O> + Send + Sync,
{
    pub fn new(f: F) -> Self {
        Self { f, io: PhantomData }
    }
}

impl<F, I, O> Runnable for RunnableLambda<F, I, O>
where
    F: Fn(I) -> Result<O> + Send + Sync,
{
    type Input = I;
    type Output = O;
    fn invoke(&self, input: I) -> Result<O> {
        (self.f)(input)
    }
}

/// Shared and boxed runnables run as the runnable itself.
macro_rules! forward {
    ($($ptr:ty),*) => {$(
        impl<R: Runnable + ?Sized> Runnable for $ptr {
            type Input = R::Input;
            type Output = R::Output;
            fn invoke(&self, input: R::Input) -> Result<R::Output> {
                (**self).invoke(input)
            }
            fn stream<'a>(&'a self, input: R::Input) -> Chunks<'a, R::Output> {
                (**self).stream(input)
            }
            fn batch(&self, inputs: Vec<R::Input>) -> Result<Vec<R::Output>> {
                (**self).batch(inputs)
            }
        }
    )*};
}
forward!(Box<R>, Arc<R>, &R);

/// `a | b` for the crate's runnables (the same as `a.pipe(b)`).
macro_rules! impl_bitor {
    ($($ty:ty),* $(,)?) => {$(
        impl<R: $crate::Runnable<Input = <$ty as $crate::Runnable>::Output>> std::ops::BitOr<R> for $ty {
            type Output = $crate::Pipe<$ty, R>;
            fn bitor(self, next: R) -> Self::Output {
                $crate::Pipe { first: self, second: next }
            }
        }
    )*};
}
pub(crate) use impl_bitor;

impl<A, B, R> BitOr<R> for Pipe<A, B>
where
    A: Runnable,
    B: Runnable<Input = A::Output>,
    R: Runnable<Input = B::Output>,
{
    type Output = Pipe<Pipe<A, B>, R>;
    fn bitor(self, next: R) -> Self::Output {
        Pipe {
            first: self,
            second: next,
        }
    }
}

impl<F, I, O, R> BitOr<R> for RunnableLambda<F, I, O>
where
    F: Fn(I) -> Result<O> + Send + Sync,
    R: Runnable<Input = O>,
{
    type Output = Pipe<Self, R>;
    fn bitor(self, next: R) -> Self::Output {
        Pipe {
            first: self,
            second: next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn add(n: i64) -> RunnableLambda<impl Fn(i64) -> Result<i64> + Send + Sync, i64, i64> {
        RunnableLambda::new(move |x: i64| Ok(x + n))
    }

    #[test]
    fn pipes_compose_in_order() {
        let double = RunnableLambda::new(|x: i64| Ok(x * 2));
        let chain = add(1) | double | add(10);
        assert_eq!(chain.invoke(4).unwrap(), 20); // (4 + 1) * 2 + 10
        let chain = add(1).pipe(RunnableLambda::new(|x: i64| Ok(x.to_string())));
        assert_eq!(chain.batch(vec![1, 2, 3]).unwrap(), vec!["2", "3", "4"]);
        let chunks: Vec<String> = chain.stream(7).map(|c| c.unwrap()).collect();
        assert_eq!(chunks, vec!["8"]);
    }

    #[test]
    fn an_error_stops_the_pipe() {
        let fail = RunnableLambda::new(|x: i64| -> Result<i64> { Err(Error::Chain(format!("no {x}"))) });
        let ran = std::sync::atomic::AtomicBool::new(false);
        let after = RunnableLambda::new(|x: i64| {
            ran.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(x)
        });
        let chain = add(1) | fail | &after;
        assert_eq!(chain.invoke(1).unwrap_err().to_string(), "chain: no 2");
        let mut stream = chain.stream(1);
        assert!(stream.next().unwrap().is_err() && stream.next().is_none());
        assert!(!ran.load(std::sync::atomic::Ordering::Relaxed));
    }
}
