"""Drivers that run a mergeable reduction (:class:`jaxlm.core.reduction.Reduction`) wherever
the data live. Each returns a *runner*: ``run(reduction) -> result``, bound to its data.

``memory.runner(batches)``          a re-iterable of in-memory row blocks (a loop)
``stream.runner(passes, ...)``      a streamed source: one re-read per pass, a reader thread
                                    decoding the next block while this one is reduced, progress
``dask.runner(X, Y, w)``            row-chunked dask arrays: one accumulator per partition on
                                    the workers, merged in a tree there; finish on the client
``devices.runner(X, Y, w, ...)``    rows split over JAX devices: the reduction's jit-able
                                    ``block`` per device (``shard_map``), merged on the host

A driver knows no reduction by name: adding a reduction (a new model's pass) touches none of
them. This package imports :mod:`jaxlm.core` only; models and the CLI import it.
"""
