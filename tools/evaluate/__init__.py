"""``python -m tools.evaluate``: every attention mechanism trained on the same small tasks.

==========  ===========================================================
``tasks``   the generated tasks (recall, long-distance), their specs
``listops`` ListOps expressions in Long Range Arena's format
``model``   the shared model: embeddings, Transformer, readout
``train``   one run: train, score, time, count memory
``run``     the benchmark: plan, resume, workers, records
``table``   the closing table
``cli``     the command line
==========  ===========================================================
"""
