//! [`Token`]: what a backend stores with each watched fd and hands back with each event.
//!
//! The selector's registry makes tokens and the backends carry them, so the type sits below
//! both. A token is an id of the registry's slot table (`slots.rs`): it packs a registration's
//! slot and that slot's generation into the 64 bits of `epoll_event.data`: the slot takes the low ⌈log₂ N⌉ bits, the generation the rest. A
//! generation moves on each time its slot is freed, and wraps after 2^(64 − ⌈log₂ N⌉) reuses of
//! one slot (2^58 for N = 64, 2^52 for N = 4096, 2^32 at the largest N): only then could a token
//! kept from an old registration match a new one. Wrapping, not retiring, keeps every slot usable.

use crate::slots::slot_bits;
use core::fmt;

/// A registration's slot in a selector of capacity `N`, and the slot's generation.
///
/// # Examples
///
/// ```
/// use picosel::backend::Token;
/// let t = Token::<16>::new(3, 7);
/// assert_eq!((t.slot(), t.generation()), (3, 7));
/// assert_eq!(Token::<16>::from_u64(t.to_u64()), t);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token<const N: usize>(u64);

impl<const N: usize> Token<N> {
    /// Bits of the slot: ⌈log₂ N⌉ (0 for `N <= 1`).
    ///
    /// ```
    /// use picosel::backend::Token;
    /// assert_eq!((Token::<1>::SLOT_BITS, Token::<64>::SLOT_BITS, Token::<65>::SLOT_BITS), (0, 6, 7));
    /// ```
    pub const SLOT_BITS: u32 = slot_bits(N);

    /// The largest generation; the one after it is 0.
    ///
    /// ```
    /// use picosel::backend::Token;
    /// assert_eq!(Token::<4096>::MAX_GENERATION, (1 << 52) - 1);
    /// ```
    pub const MAX_GENERATION: u64 = u64::MAX >> Self::SLOT_BITS;

    const SLOT_MASK: u64 = !(u64::MAX << Self::SLOT_BITS);

    /// Packs a slot (`< N`) and a generation (taken modulo `MAX_GENERATION + 1`).
    ///
    /// ```
    /// assert_eq!(picosel::backend::Token::<8>::new(1, 2).slot(), 1);
    /// ```
    #[must_use]
    pub const fn new(slot: u32, generation: u64) -> Self {
        Token((slot as u64 & Self::SLOT_MASK) | (generation << Self::SLOT_BITS))
    }

    /// The slot in the selector's table.
    ///
    /// ```
    /// assert_eq!(picosel::backend::Token::<8>::new(5, 0).slot(), 5);
    /// ```
    #[must_use]
    pub const fn slot(self) -> u32 {
        // SLOT_MASK has at most 32 bits: N fits a u32.
        #[allow(clippy::cast_possible_truncation)]
        let slot = (self.0 & Self::SLOT_MASK) as u32;
        slot
    }

    /// The generation of the slot when the registration was made.
    ///
    /// ```
    /// assert_eq!(picosel::backend::Token::<8>::new(5, 9).generation(), 9);
    /// ```
    #[must_use]
    pub const fn generation(self) -> u64 {
        self.0 >> Self::SLOT_BITS
    }

    /// The generation after `generation`, wrapping after [`MAX_GENERATION`](Self::MAX_GENERATION).
    ///
    /// ```
    /// use picosel::backend::Token;
    /// assert_eq!(Token::<8>::next_generation(4), 5);
    /// assert_eq!(Token::<8>::next_generation(Token::<8>::MAX_GENERATION), 0);
    /// ```
    #[must_use]
    pub const fn next_generation(generation: u64) -> u64 {
        generation.wrapping_add(1) & Self::MAX_GENERATION
    }

    /// The packed value, as stored in `epoll_event.data`.
    ///
    /// ```
    /// assert_eq!(picosel::backend::Token::<16>::new(1, 1).to_u64(), (1 << 4) | 1);
    /// ```
    #[must_use]
    pub const fn to_u64(self) -> u64 {
        self.0
    }

    /// Unpacks a value made by [`to_u64`](Self::to_u64). Any value is a token; one whose slot is
    /// `>= N` or whose generation is not current is simply not live.
    ///
    /// ```
    /// use picosel::backend::Token;
    /// assert_eq!(Token::<16>::from_u64(42), Token::new(10, 2));
    /// ```
    #[must_use]
    pub const fn from_u64(v: u64) -> Self {
        Token(v)
    }
}

impl<const N: usize> fmt::Debug for Token<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("slot", &self.slot())
            .field("generation", &self.generation())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn generation_gets_every_bit_the_slot_does_not_need() {
        assert_eq!(Token::<1>::MAX_GENERATION, u64::MAX);
        assert_eq!(Token::<2>::SLOT_BITS, 1);
        assert_eq!(Token::<4096>::SLOT_BITS, 12);
        assert_eq!(Token::<4097>::SLOT_BITS, 13);
        let t = Token::<4096>::new(4095, Token::<4096>::MAX_GENERATION);
        assert_eq!((t.slot(), t.generation()), (4095, (1 << 52) - 1));
        assert_eq!(t.to_u64(), u64::MAX);
    }

    /// Past the 32-bit generation of the old layout: a slot reused 2^32 times does not give back
    /// the token of its first registration.
    #[test]
    fn generations_wrap_past_2_pow_32_without_repeating() {
        let first = Token::<64>::new(9, 0);
        let later = Token::<64>::new(9, 1 << 32);
        assert_ne!(first, later);
        assert_eq!(later.generation(), 1 << 32);
        let last = Token::<64>::MAX_GENERATION;
        assert_eq!(Token::<64>::next_generation(last), 0);
        assert_eq!(last, (1 << 58) - 1);
    }
}
