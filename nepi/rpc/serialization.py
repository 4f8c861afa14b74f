"""How nepi's exceptions travel through serpent: rebuilt with their type and message."""

from Pyro5.api import register_class_to_dict, register_dict_to_class

from nepi import errors

_EXCEPTIONS = [errors.NepiError, errors.AttributeValueError, errors.XmlFormatError,
               errors.DesignError, errors.DeploymentError]


def _class_name(cls) -> str:
    return "%s.%s" % (cls.__module__, cls.__name__)


def _problem_to_dict(problem):
    return {"__class__": _class_name(errors.Problem), "message": problem.message,
            "guid": problem.guid, "label": problem.label, "factory_id": problem.factory_id,
            "testbed": problem.testbed, "attribute": problem.attribute,
            "blocking": problem.blocking}


def _dict_to_problem(classname, d):
    return errors.Problem(d["message"], d.get("guid"), d.get("label"), d.get("factory_id"),
                          d.get("testbed"), d.get("attribute"), d.get("blocking", True))


def _dict_to_exception(classname, d):
    cls = {_class_name(c): c for c in _EXCEPTIONS + [errors.RemoteError,
                                                     errors.ControllerUnreachableError]
           }[classname]
    exc = cls.__new__(cls)
    Exception.__init__(exc, *d.get("args", ()))
    for name, value in (d.get("attributes") or {}).items():
        setattr(exc, name, value)
    return exc


register_class_to_dict(errors.Problem, _problem_to_dict)
register_dict_to_class(_class_name(errors.Problem), _dict_to_problem)
for _cls in _EXCEPTIONS + [errors.RemoteError, errors.ControllerUnreachableError]:
    register_dict_to_class(_class_name(_cls), _dict_to_exception)


def portable_exception(exc: BaseException) -> BaseException:
    """An exception the client can rebuild: builtins and nepi's own pass as they are,
    anything else becomes a RemoteError carrying its type name and message."""
    module = type(exc).__module__
    if module == "builtins" or module == "nepi.errors":
        return exc
    return errors.RemoteError("%s: %s" % (type(exc).__name__, exc))
