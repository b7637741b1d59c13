#!/usr/bin/env python3
# Why this file exists: the VGG16 half of issue #16's LPIPS acceptance (the AlexNet half has
# committed fixtures; VGG16's random weights are 58 MB, too big to commit). It builds the `lpips`
# package's LPIPS(net='vgg') with random, non-pretrained weights at 32x32
# (tests/fixtures/make_lpips_golden.py, make_case), writes the weights and golden values into
# the work directory and runs ladder's test (tests/test_lpips.cpp,
# Lpips.VggEqualsThePackageWhenGiven, which reads $LADDER_LPIPS_VGG_FIXTURES): distance and input
# gradient within 1e-5 relative. Needs torch, torchvision, lpips and safetensors: without them it
# prints "SKIPPED: ..." and exits 77 (CTest SKIP_RETURN_CODE); they are optional, never installed.
import sys
from pathlib import Path

try:
    import torch
    import lpips  # noqa: F401
    import safetensors  # noqa: F401
except ImportError as error:
    print(f"SKIPPED: {error} (torch, torchvision, lpips and safetensors are needed for the LPIPS "
          f"VGG16 parity test; they are optional)")
    sys.exit(77)

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parent / "fixtures"))
import interop_harness as h
from make_lpips_golden import make_case


def body(hr):
    torch.set_num_threads(2)
    test_binary = Path(hr.ladder_path).parent / "tests" / "test_lpips"
    if not test_binary.exists():
        raise h.Skipped(f"{test_binary} is not built")
    golden = make_case("vgg", 32, hr.work, "lpips_vgg")
    h.log(f"lpips vgg 32x32: distances {golden['distance'].tolist()}")
    hr.env["LADDER_LPIPS_VGG_FIXTURES"] = str(hr.work)
    result = hr.run([test_binary, "--gtest_filter=Lpips.VggEqualsThePackageWhenGiven"], timeout=240,
                    label="test_lpips vgg")
    h.check("[  PASSED  ] 1 test" in result.output,  # a skip reads "[  PASSED  ] 0 tests"
            f"the VGG16 case did not run and pass:\n{h.indent(result.output)}")
    for line in result.lines():
        if line.startswith("vgg"):
            h.log(line)


if __name__ == "__main__":
    h.main(body, h.Harness("LPIPS VGG16 parity of ladder's CPU LPIPS with the lpips package"))
