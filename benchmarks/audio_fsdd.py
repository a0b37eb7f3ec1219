"""Free Spoken Digit Dataset (../shared/data/fsdd): the official split (index 0-4 as test, 300 files)
and the speaker-held-out split (train on five speakers, test on the sixth, each in turn).

Usage: python benchmarks/audio_fsdd.py [--no-speakers | --speakers-only] [--speakers a,b,c]
Target: official-split accuracy >= 97%; the speaker-held-out mean is reported.
"""
import sys

from _common import require_shared, run_recipe, verdict

require_shared("fsdd/recordings")
RECIPE = "examples/recipes/fsdd-cnn.yaml"
if "--speakers-only" not in sys.argv:
    results, seconds, run_dir = run_recipe(RECIPE)
    acc = results["accuracy"]
    print(f"FSDD official split (300 test files): accuracy {acc:.4f} ({verdict(acc, 0.97)} target 0.97), "
          f"wall {seconds:.0f} s, run {run_dir}", flush=True)
if "--no-speakers" not in sys.argv:
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    if "--speakers" in sys.argv:  # a subset of folds, e.g. to finish a run in parts
        speakers = sys.argv[sys.argv.index("--speakers") + 1].split(",")
    accs, total = [], 0.0
    for spk in speakers:
        r, s, _ = run_recipe(RECIPE, ["data.test_index=null", f"data.test_groups=[{spk}]", "task.group_validation=true",
                                      "export.formats=[]", f"tracking.run_name=fsdd-heldout-{spk}"])
        accs.append(r["accuracy"])
        total += s
        print(f"  held-out speaker {spk:9s}: accuracy {r['accuracy']:.4f} ({s:.0f} s)", flush=True)
    print(f"FSDD speaker-held-out: mean accuracy {sum(accs) / len(accs):.4f} over {len(accs)} folds "
          f"(min {min(accs):.4f}), wall {total:.0f} s")
