"""Cognito user administration: users, their role group and their scope attributes.

A user's role is the one group of the pool it belongs to (enterprise, duty, regulator, area, emergency, admin); its
scope is in custom attributes (`custom:enterprise_id`, `custom:department`, `custom:area_codes`) that only this
adapter (with the pool's admin API) writes: the app client may not write them, so nobody changes their own scope.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.lifecycle import Role
from chalicelib.services.ports import NewUser, UserAccount, UserPage

PERSON_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.SYSTEM)
SCOPE_ATTRIBUTES = ("custom:enterprise_id", "custom:department", "custom:area_codes")


def _attributes(user: NewUser) -> list[dict[str, str]]:
    values = {
        "name": user.name,
        "phone_number": user.phone,
        "custom:enterprise_id": user.enterprise_id if user.role is Role.ENTERPRISE else None,
        "custom:department": user.department if user.role is Role.REGULATOR else None,
        "custom:area_codes": ",".join(user.area_codes) if user.role is Role.AREA else None,
    }
    return [{"Name": name, "Value": value} for name, value in values.items() if value]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _account(
    username: str, attributes: Iterable[Mapping[str, str]], role: Role | None, **extra: Any
) -> UserAccount:
    values = {attribute["Name"]: attribute["Value"] for attribute in attributes}
    areas = values.get("custom:area_codes", "")
    return UserAccount(
        username=username,
        role=role,
        name=values.get("name", ""),
        phone=values.get("phone_number"),
        enterprise_id=values.get("custom:enterprise_id") or None,
        department=values.get("custom:department") or None,
        area_codes=tuple(code for code in areas.split(",") if code),
        **extra,
    )


class CognitoDirectory:
    def __init__(self, client: Any, user_pool_id: str, client_id: str = "") -> None:
        self._cognito = client
        self._pool = user_pool_id
        self._client_id = client_id

    def create_user(self, user: NewUser) -> UserAccount:
        """Create the user in its role group; Conflict when the username is taken."""
        request: dict[str, Any] = {
            "UserPoolId": self._pool,
            "Username": user.username,
            "UserAttributes": _attributes(user),
        }
        if user.temporary_password:
            request["TemporaryPassword"] = user.temporary_password
        if user.suppress_invitation:
            request["MessageAction"] = "SUPPRESS"
        try:
            created = self._cognito.admin_create_user(**request)["User"]
        except ClientError as exc:
            if _code(exc) == "UsernameExistsException":
                raise Conflict("user_exists", "用户名已存在") from exc
            if _code(exc) in {"InvalidParameterException", "InvalidPasswordException"}:
                raise ValidationFailed("invalid_user", "用户信息不符合要求") from exc
            raise
        self._cognito.admin_add_user_to_group(
            UserPoolId=self._pool, Username=user.username, GroupName=user.role.value
        )
        return _account(
            str(created.get("Username", user.username)),
            created.get("Attributes", ()),
            user.role,
            enabled=bool(created.get("Enabled", True)),
            status=str(created.get("UserStatus", "")),
        )

    def set_role(self, username: str, role: Role) -> None:
        """The one group of `username` becomes `role` (other role groups are left)."""
        for group in self._groups_of(username):
            if group != role.value and group in {r.value for r in PERSON_ROLES}:
                self._cognito.admin_remove_user_from_group(
                    UserPoolId=self._pool, Username=username, GroupName=group
                )
        self._cognito.admin_add_user_to_group(UserPoolId=self._pool, Username=username, GroupName=role.value)

    def set_scope(
        self,
        username: str,
        *,
        enterprise_id: str | None = None,
        department: str | None = None,
        area_codes: Sequence[str] = (),
    ) -> None:
        values = {
            "custom:enterprise_id": enterprise_id or "",
            "custom:department": department or "",
            "custom:area_codes": ",".join(area_codes),
        }
        self._cognito.admin_update_user_attributes(
            UserPoolId=self._pool,
            Username=username,
            UserAttributes=[{"Name": name, "Value": value} for name, value in values.items()],
        )

    def set_password(self, username: str, password: str) -> None:
        self._cognito.admin_set_user_password(
            UserPoolId=self._pool, Username=username, Password=password, Permanent=True
        )

    def user(self, username: str) -> UserAccount:
        try:
            found = self._cognito.admin_get_user(UserPoolId=self._pool, Username=username)
        except ClientError as exc:
            if _code(exc) == "UserNotFoundException":
                raise NotFound("user_not_found", "用户不存在") from exc
            raise
        groups = self._groups_of(username)
        roles = [role for role in PERSON_ROLES if role.value in groups]
        return _account(
            found["Username"],
            found.get("UserAttributes", ()),
            roles[0] if len(roles) == 1 else None,
            enabled=bool(found.get("Enabled", True)),
            status=str(found.get("UserStatus", "")),
        )

    def list_users(self, limit: int, token: str | None = None, roles: Sequence[Role] = PERSON_ROLES) -> UserPage:
        """Users by role group (the role comes with the listing), `limit` at most; `token` resumes a listing."""
        position = _decode_token(token, roles)
        page = UserPage()
        for index in range(position[0], len(roles)):
            role = roles[index]
            next_token = position[1] if index == position[0] else None
            while len(page.users) < limit:
                request: dict[str, Any] = {
                    "UserPoolId": self._pool,
                    "GroupName": role.value,
                    "Limit": min(60, limit - len(page.users)),
                }
                if next_token:
                    request["NextToken"] = next_token
                try:
                    answer = self._cognito.list_users_in_group(**request)
                except ClientError as exc:
                    if _code(exc) == "InvalidParameterException" and "NextToken" in request:
                        raise ValidationFailed("invalid_cursor", "分页游标无效") from exc
                    raise
                for found in answer.get("Users", ()):
                    page.users.append(
                        _account(
                            found["Username"],
                            found.get("Attributes", ()),
                            role,
                            enabled=bool(found.get("Enabled", True)),
                            status=str(found.get("UserStatus", "")),
                        )
                    )
                next_token = answer.get("NextToken")
                if not next_token:
                    break
            if len(page.users) >= limit:
                if next_token:
                    page.next_token = _encode_token(role, next_token)
                elif index + 1 < len(roles):
                    page.next_token = _encode_token(roles[index + 1], None)
                return page
        return page

    def _groups_of(self, username: str) -> set[str]:
        return {group["GroupName"] for group in self._paged_groups(username)}

    def _paged_groups(self, username: str) -> Iterator[Mapping[str, Any]]:
        request: dict[str, Any] = {"UserPoolId": self._pool, "Username": username}
        while True:
            answer = self._cognito.admin_list_groups_for_user(**request)
            yield from answer.get("Groups", ())
            if not answer.get("NextToken"):
                return
            request["NextToken"] = answer["NextToken"]


def _encode_token(role: Role, token: str | None) -> str:
    raw = json.dumps({"role": role.value, "token": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, roles: Sequence[Role]) -> tuple[int, str | None]:
    if not token:
        return 0, None
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        index = [role.value for role in roles].index(body["role"])
        inner = body["token"]
        if inner is not None and not isinstance(inner, str):
            raise TypeError("token")
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationFailed("invalid_cursor", "分页游标无效") from exc
    return index, inner
