"""The one typed request every front end builds (``tenku generate``, the server, ``Pipeline.stream``,
``tenku eval``): ``Request`` as asked, ``resolve`` against a model's ``Geometry`` into a
``Resolved`` request (mode rules, defaults, rounding, limits, chunk plan), ``RequestError`` when
it cannot be made, and ``make`` (``tenku.request.make``) to run one into a video and its sidecar."""

from tenku.request.geometry import (Geometry, check_aspect, fit_multiple, input_size, parse_aspect, parse_size,
                                    size_for_aspect)
from tenku.request.resolve import MODES, Resolved, resolve
from tenku.request.spec import API_NAMES, CLI_NAMES, PYTHON_NAMES, Input, Limits, Request, RequestError, check_types

__all__ = ["API_NAMES", "CLI_NAMES", "MODES", "PYTHON_NAMES", "Geometry", "Input", "Limits", "Request", "RequestError",
           "Resolved", "check_aspect", "check_types", "fit_multiple", "input_size", "parse_aspect", "parse_size", "resolve",
           "size_for_aspect"]
