"""The autoencoder: an encoder, a code activation, a decoder and an output activation.

Model families differ only in their encoder and decoder modules; everything a loss term
may need is returned in the aux dict, so models never compute losses.
"""

import flax.linen as nn
import jax

from aejax.models.interface import ModelInterface
from aejax.models.layers import get_activation, keep_top_k


class Autoencoder(ModelInterface, nn.Module):
    """x -> z = code_act(encoder(x)) -> x̂ = output_act(decoder(z)).

    Attributes:
      encoder: maps [B, *input_shape] to code pre-activations [B, code_dim] (or [B, h, w, c]).
      decoder: maps codes to output logits [B, *input_shape].
      code_activation: name of the activation applied to the code ("linear" by default).
      output_activation: name of the activation applied to the decoder's logits.
      top_k: if > 0, only the k largest code activations of each example are kept (a
        k-sparse code, Makhzani & Frey, 2013); the rest are zeroed.
    """

    encoder: nn.Module
    decoder: nn.Module
    code_activation: str = "linear"
    output_activation: str = "sigmoid"
    top_k: int = 0

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> code z."""
        act = get_activation(self.code_activation, "config.model.code_activation")
        z = act(self.encoder(x, train=train))
        return keep_top_k(z, self.top_k) if self.top_k > 0 else z

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """code z -> (x̂, logits), both [B, *input_shape]."""
        logits = self.decoder(z, train=train)
        act = get_activation(self.output_activation, "config.model.output_activation")
        return act(logits), logits

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂ [B, *input_shape], aux {z, logits, x_hat}).

        aux also holds "encoder_chain", the encoder's weights as a `DenseChain`, when the
        encoder can describe itself as one (an MLP without batch norm), for loss terms with
        a closed form in the weights (`contractive`), and "decoder_chain", the decoder's
        (with the output activation), for terms on the decoder's weights or Jacobian
        (`decoder_l2`, `decoder_gradient_penalty`); they cost no computation.
        """
        z = self.encode(x, train=train)
        x_hat, logits = self.decode(z, train=train)
        aux = {"z": z, "logits": logits, "x_hat": x_hat}
        if hasattr(self.encoder, "dense_chain"):
            chain = self.encoder.dense_chain(self.code_activation, self.top_k)
            if chain is not None:  # None: the encoder has no closed form (batch norm)
                aux["encoder_chain"] = chain
        if hasattr(self.decoder, "dense_chain"):
            chain = self.decoder.dense_chain(self.output_activation)
            if chain is not None:
                aux["decoder_chain"] = chain
        return x_hat, aux
