"""`locust` for this project's environment: the same as the `locust` command, after one shim.

dash[testing] pins selenium 4.2, which pins urllib3 1.26; locust >= 2.43 imports
`urllib3.util.create_urllib3_context`, which urllib3 1.26 has in `urllib3.util.ssl_` only.
The users here are FastHttpUsers (geventhttpclient), which never use it, so the name is
pointed at the 1.26 function before locust is imported. gevent patches first, as locust
itself would, so nothing imports ssl unpatched.

    python bench/load/locust_main.py -f bench/load/locustfile.py --headless -u 20 -r 5 -t 30s --host URL
"""
from __future__ import annotations

import sys

from gevent import monkey

monkey.patch_all()

import urllib3.util  # noqa: E402

if not hasattr(urllib3.util, "create_urllib3_context"):
    from urllib3.util.ssl_ import create_urllib3_context
    urllib3.util.create_urllib3_context = create_urllib3_context  # type: ignore[attr-defined]

from locust.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
