"""Networks: move vectors between clients and server and keep the ledger of bits.

>>> net = LocalNetwork(n=10)
>>> X_hat = net.uplink(X, compressor, seed, round=t)    # (10, d) decoded rows, bits recorded
>>> g = net.mean(X_hat)                                  # reduction over all clients
>>> net.ledger.mean_total("up")                          # bits per client so far
"""

from commpress.network.base import Network, NonFiniteError
from commpress.network.ledger import DIRECTIONS, Ledger
from commpress.network.local import LocalNetwork

__all__ = ["DIRECTIONS", "Ledger", "LocalNetwork", "Network", "NonFiniteError"]
