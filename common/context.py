"""Request context: who asked, in which project, under which request id.

It travels with every RPC message (serialized by common.rpc) and is stored in the thread so
oslo.log puts its request id on every log line the request causes, in every service.
"""

from oslo_context import context as oslo_context


class RequestContext(oslo_context.RequestContext):
    def __init__(self, user_id=None, project_id=None, roles=None, is_admin=None,
                 request_id=None, read_deleted="no", **kwargs):
        kwargs.setdefault("user_id", user_id)
        kwargs.setdefault("project_id", project_id)
        super().__init__(roles=roles or [], is_admin=bool(is_admin), request_id=request_id,
                         **kwargs)
        self.read_deleted = read_deleted

    def to_dict(self):
        values = super().to_dict()
        values["read_deleted"] = self.read_deleted
        return values

    @classmethod
    def from_dict(cls, values):
        ctx = super().from_dict(values)
        ctx.read_deleted = values.get("read_deleted", "no")
        return ctx

def get_admin_context(request_id=None):
    return RequestContext(user_id=None, project_id=None, is_admin=True, roles=["admin"],
                          request_id=request_id, overwrite=False)
