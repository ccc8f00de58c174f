// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title RecordLedger
/// @notice The seed stack's (TMSMD, Ethereum + Solidity) medical-data-sharing workload as one
/// contract, for `bench/baseline.ts`: a record index, patient consents and an access log, with
/// checks equivalent to medledger's for these operations. Record data stays off chain (hashes only).
contract RecordLedger {
    /// Consent scope covering every record of the patient.
    bytes32 public constant ALL = "all";

    struct Record {
        bytes32 patientCode;
        bytes32 institution;
        bytes32 recordType;
        bytes32 contentHash;
        address author;
        uint64 registeredAt;
    }

    struct Consent {
        bytes32 patientCode;
        address grantee;
        uint64 expiresAt;
        bytes32 scope;
        bytes32 purpose;
    }

    struct Access {
        address accessor;
        uint64 accessedAt;
        bytes32 recordId;
        bytes32 purpose;
        uint256 consentId;
    }

    mapping(bytes32 recordId => Record) public records;
    /// The address that speaks for a patient code, bound by the code's first registration.
    mapping(bytes32 patientCode => address) public patientOf;
    Consent[] public consents;
    /// keccak(patientCode, grantee, scope, purpose) → latest consent id + 1 (0: none).
    mapping(bytes32 key => uint256) private consentFor;
    Access[] public accesses;

    event RecordRegistered(bytes32 indexed recordId, bytes32 indexed patientCode, address indexed author, bytes32 contentHash);
    event ConsentGranted(uint256 indexed consentId, bytes32 indexed patientCode, address indexed grantee, bytes32 scope);
    event AccessRecorded(bytes32 indexed recordId, address indexed accessor, uint256 consentId, bytes32 purpose);

    /// Registers a record index entry; the author is the sender. A record id registers once.
    function register(
        bytes32 recordId,
        bytes32 patientCode,
        address patient,
        bytes32 institution,
        bytes32 recordType,
        bytes32 contentHash
    ) external {
        require(recordId != bytes32(0) && recordId != ALL, "bad record id");
        require(records[recordId].author == address(0), "record exists");
        require(patientCode != bytes32(0) && patient != address(0), "no patient");
        address bound = patientOf[patientCode];
        if (bound == address(0)) patientOf[patientCode] = patient;
        else require(bound == patient, "patient mismatch");
        records[recordId] = Record(patientCode, institution, recordType, contentHash, msg.sender, uint64(block.timestamp));
        emit RecordRegistered(recordId, patientCode, msg.sender, contentHash);
    }

    /// The patient grants `grantee` access to one record of theirs or to all (`ALL`) until `expiresAt`.
    function grant(bytes32 patientCode, address grantee, bytes32 scope, bytes32 purpose, uint64 expiresAt) external returns (uint256 id) {
        require(patientOf[patientCode] == msg.sender, "not the patient");
        require(grantee != address(0), "no grantee");
        require(expiresAt > block.timestamp, "already expired");
        require(scope == ALL || records[scope].patientCode == patientCode, "not the patient's record");
        id = consents.length;
        consents.push(Consent(patientCode, grantee, expiresAt, scope, purpose));
        consentFor[keccak256(abi.encode(patientCode, grantee, scope, purpose))] = id + 1;
        emit ConsentGranted(id, patientCode, grantee, scope);
    }

    /// Logs an access by the sender; admitted only while an unexpired consent covers it.
    function recordAccess(bytes32 recordId, bytes32 purpose) external returns (uint256 consentId) {
        bytes32 patientCode = records[recordId].patientCode;
        require(records[recordId].author != address(0), "no such record");
        consentId = _validConsent(patientCode, recordId, purpose);
        accesses.push(Access(msg.sender, uint64(block.timestamp), recordId, purpose, consentId));
        emit AccessRecorded(recordId, msg.sender, consentId, purpose);
    }

    function _validConsent(bytes32 patientCode, bytes32 recordId, bytes32 purpose) private view returns (uint256) {
        uint256 forRecord = consentFor[keccak256(abi.encode(patientCode, msg.sender, recordId, purpose))];
        if (forRecord != 0 && consents[forRecord - 1].expiresAt > block.timestamp) return forRecord - 1;
        uint256 forAll = consentFor[keccak256(abi.encode(patientCode, msg.sender, ALL, purpose))];
        require(forAll != 0 && consents[forAll - 1].expiresAt > block.timestamp, "no valid consent");
        return forAll - 1;
    }
}
