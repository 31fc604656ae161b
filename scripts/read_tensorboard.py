#!/usr/bin/env python3
"""Prints the scalars of a TensorBoard log folder as TensorBoard itself reads them, as JSON.

  read_tensorboard.py DIR            {"tag": [[step, value, wall_time], ...], ...}, steps in order

DIR is a run's OUT/tb (or any folder of events.out.tfevents.* files). The reading is
TensorBoard's own (tensorboard.backend.event_processing.event_accumulator.EventAccumulator,
all scalars kept, orphaned events purged as the TensorBoard server does), so what this prints
is what TensorBoard shows. Needs the `tensorboard` pip package; the TensorBoard tests run it
(Tests/TensorBoardTests).
"""
import json
import sys


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__.strip())
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(argv[1], size_guidance={ea.SCALARS: 0})   # 0: keep every event
    acc.Reload()
    out = {tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)] for tag in acc.Tags()[ea.SCALARS]}
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv)
