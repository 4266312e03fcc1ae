"""Networks: move vectors between clients and server and keep the ledger of bits.

>>> net = LocalNetwork(n=10)
>>> X_hat = net.uplink(X, compressor, seed, round=t)    # (10, d) decoded rows, bits recorded
>>> g = net.mean(X_hat)                                  # reduction over all clients
>>> net.ledger.mean_total("up")                          # bits per client so far
>>> S = make_sampler("nice:3").sample(10, seed)          # partial participation: who sends this round
>>> net.uplink(X, compressor, seed, round=t, participants=S)   # the others send nothing, cost 0 bits
"""

from commpress.network.base import Network, NonFiniteError
from commpress.network.ledger import DIRECTIONS, Ledger
from commpress.network.local import LocalNetwork
from commpress.network.sampling import Sampler, make_sampler

__all__ = ["DIRECTIONS", "Ledger", "LocalNetwork", "Network", "NonFiniteError", "Sampler", "make_sampler"]
