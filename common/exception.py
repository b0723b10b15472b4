"""Exceptions shared by every service.

Each exception carries the HTTP code and the Cinder fault name the API renders it with, so a
failure raised deep in the request-handling layer reaches the client as a Cinder-shaped body.
"""


class LaminaException(Exception):
    code = 500
    fault = "computeFault"
    message = "An unknown error occurred."

    def __init__(self, message=None, **kwargs):
        if message is None:
            message = self._format(kwargs)
        self.msg = message
        super().__init__(message)

    def _format(self, kwargs):
        if not kwargs:
            return self.message
        try:
            return self.message % kwargs
        except (KeyError, TypeError, ValueError):
            # raised with other fields than its message names: still say what is known,
            # rather than turning the failure being reported into a KeyError
            return "%s (%s)" % (self.message, ", ".join(
                "%s=%s" % item for item in sorted(kwargs.items())))


class BadRequest(LaminaException):
    code = 400
    fault = "badRequest"
    message = "Invalid request."


class InvalidInput(BadRequest):
    message = "Invalid input received: %(reason)s"


class InvalidVolume(BadRequest):
    message = "Invalid volume: %(reason)s"


class InvalidSnapshot(BadRequest):
    message = "Invalid snapshot: %(reason)s"


class InvalidVolumeType(BadRequest):
    message = "Invalid volume type: %(reason)s"


class NotAuthorized(LaminaException):
    code = 401
    fault = "unauthorized"
    message = "Not authorized."


class Forbidden(LaminaException):
    code = 403
    fault = "forbidden"
    message = "Policy doesn't allow this operation to be performed."


class NotFound(LaminaException):
    code = 404
    fault = "itemNotFound"
    message = "Resource could not be found."


class MarkerNotFound(NotFound):
    message = "Marker %(marker)s could not be found."


class VolumeNotFound(NotFound):
    message = "Volume %(volume_id)s could not be found."


class SnapshotNotFound(NotFound):
    message = "Snapshot %(snapshot_id)s could not be found."


class SnapshotMetadataNotFound(NotFound):
    message = "Snapshot %(snapshot_id)s has no metadata with key %(key)s."


class VolumeTypeNotFound(NotFound):
    message = "Volume type %(type_id)s could not be found."


class VolumeTypeExtraSpecNotFound(NotFound):
    message = "Volume Type %(type_id)s has no extra specs with key %(key)s."


class VolumeMetadataNotFound(NotFound):
    message = "Volume %(volume_id)s has no metadata with key %(key)s."


class MessageNotFound(NotFound):
    message = "Message %(message_id)s could not be found."


class ServiceNotFound(NotFound):
    message = "Service %(service)s could not be found."


class Conflict(LaminaException):
    code = 409
    fault = "conflictingRequest"
    message = "Conflicting request."


class VolumeTypeExists(Conflict):
    message = "Volume Type %(name)s already exists."


class VolumeTypeInUse(BadRequest):
    message = "Volume Type %(type_id)s deletion is not allowed with volumes present with the type."


class DefaultVolumeTypeDeletion(BadRequest):
    message = "The default volume type %(name)s cannot be deleted."


class NotAcceptable(LaminaException):
    code = 406
    fault = "notAcceptable"
    message = "Version not supported."


class VersionNotFoundForAPIMethod(NotFound):
    message = "API version %(version)s is not supported on this method."


class OverLimit(LaminaException):
    code = 413
    fault = "overLimit"
    message = "Limit exceeded."


class ServiceBusy(LaminaException):
    """A bounded work pool is full: refuse rather than queue without end."""

    code = 503
    fault = "serviceUnavailable"
    message = "The %(service)s service is at capacity; retry later."


class NoValidBackend(LaminaException):
    message = "No valid backend was found. %(reason)s"


class DriverError(LaminaException):
    message = "Storage back end error: %(reason)s"


class SnapshotIsBusy(DriverError):
    message = "Snapshot %(snapshot_id)s is busy: %(reason)s"


class InjectedFailure(DriverError):
    """Raised by the fault-injection hook that tests use to fail one flow task."""

    message = "Injected failure at %(point)s"


class VolumeAttachmentNotFound(NotFound):
    message = "Volume attachment could not be found with filter: attachment_id = %(attachment_id)s."


class AttachmentFailed(LaminaException):
    """The volume service could not export the volume (Cinder answers 500 with this)."""

    message = "Unable to create attachment for volume (%(reason)s)."


class AttachmentUpdateFailed(LaminaException):
    message = "Unable to update the attachment (%(reason)s)."


class DetachFailed(LaminaException):
    message = "Unable to detach the volume (%(reason)s)."


class ImageNotFound(NotFound):
    message = "Image %(image_id)s could not be found."


class ImageNotAuthorized(Forbidden):
    message = "Not authorized for image %(image_id)s: %(reason)s"


class ImageUnacceptable(BadRequest):
    message = "Image %(image_id)s is unacceptable: %(reason)s"


class ImageServiceUnavailable(LaminaException):
    """The image service could not be reached, or answered with a server error."""

    code = 503
    fault = "serviceUnavailable"
    message = "The image service failed on %(call)s of image %(image_id)s: %(reason)s"


class ImageDownloadFailed(LaminaException):
    message = "Failed to download image %(image_id)s: %(reason)s"


class ImageUploadFailed(LaminaException):
    message = "Failed to upload image %(image_id)s: %(reason)s"


class ImageConversionFailed(LaminaException):
    message = "Image conversion failed: %(reason)s"
